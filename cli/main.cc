// SPDX-License-Identifier: Apache-2.0
// vigo: parses the command line and runs the command (cli/src/app.h).
#include "app.h"

int main(int argc, char** argv) { return vigo::cli::run(argc, argv); }
