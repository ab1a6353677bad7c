#include <cstdio>

#include "commands.h"

namespace imq::cli {

int cmd_synth(int, char**) {
  std::fprintf(stderr, "imq synth: not implemented yet\n");
  return 1;
}

}  // namespace imq::cli
