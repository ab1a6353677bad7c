#include <cstdio>

#include "commands.h"

namespace imq::cli {

int cmd_tokenize(int, char**) {
  std::fprintf(stderr, "imq tokenize: not implemented yet\n");
  return 1;
}

}  // namespace imq::cli
