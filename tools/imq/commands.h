// The imq subcommands. Each lives in its own file (cmd_<name>.cpp): it declares its options
// with CLI11, calls one library function and prints. No math here.
#pragma once

namespace imq::cli {

// argv[0] is the subcommand name; each returns the process exit code.
int cmd_info(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_perplexity(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_imatrix(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_convert(int argc, char** argv);

}  // namespace imq::cli
