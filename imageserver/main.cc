// SPDX-License-Identifier: Apache-2.0
// vigo-imaged: parses the command line and runs it (vigo/imageserver/app.h).
#include "vigo/common/system.h"
#include "vigo/imageserver/app.h"

int main(int argc, char** argv) {
  vigo::keep_heap_memory();  // chunk buffers are reused, not faulted in afresh
  return vigo::imageserver::run(argc, argv);
}
