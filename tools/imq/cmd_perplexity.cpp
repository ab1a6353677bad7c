#include <cstdio>

#include "commands.h"

namespace imq::cli {

int cmd_perplexity(int, char**) {
  std::fprintf(stderr, "imq perplexity: not implemented yet\n");
  return 1;
}

}  // namespace imq::cli
