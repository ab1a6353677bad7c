#include <cstdio>

#include "commands.h"

namespace imq::cli {

int cmd_imatrix(int, char**) {
  std::fprintf(stderr, "imq imatrix: not implemented yet\n");
  return 1;
}

}  // namespace imq::cli
