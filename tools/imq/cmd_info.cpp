#include <cstdio>

#include "commands.h"

namespace imq::cli {

int cmd_info(int, char**) {
  std::fprintf(stderr, "imq info: not implemented yet\n");
  return 1;
}

}  // namespace imq::cli
