#include <cstdio>

#include "commands.h"

namespace imq::cli {

int cmd_quantize(int, char**) {
  std::fprintf(stderr, "imq quantize: not implemented yet\n");
  return 1;
}

}  // namespace imq::cli
