#include <cstdio>

#include "commands.h"

namespace imq::cli {

int cmd_generate(int, char**) {
  std::fprintf(stderr, "imq generate: not implemented yet\n");
  return 1;
}

}  // namespace imq::cli
