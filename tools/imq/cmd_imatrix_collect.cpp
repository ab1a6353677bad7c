// imq imatrix -m MODEL -f TEXT: collection.
#include "imatrix_collect.h"
#include "imq/error.h"

namespace imq::cli {

int run_collection(const CollectOptions&) {
  throw_error("collection (-f) is not available yet in this build; merge, convert and statistics are");
}

}  // namespace imq::cli
