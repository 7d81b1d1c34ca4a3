// SPDX-License-Identifier: Apache-2.0
#include "vigo/vfs/command_line.h"

#include "vigo/common/error.h"

namespace vigo::vfs {

std::vector<std::string> split_command(std::string_view command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\') {
      if (i + 1 >= command.size()) throw invalid_argument("server", "trailing backslash");
      word += command[++i];
    } else if (c == '\'') {
      const std::size_t end = command.find('\'', i + 1);
      if (end == std::string_view::npos) throw invalid_argument("server", "unterminated single quote");
      word.append(command.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      bool closed = false;
      for (++i; i < command.size(); ++i) {
        const char d = command[i];
        if (d == '"') {
          closed = true;
          break;
        }
        if (d == '\\' && i + 1 < command.size()) {
          const char e = command[i + 1];
          if (e == '"' || e == '\\' || e == '$' || e == '`') {
            word += e;
            ++i;
            continue;
          }
        }
        word += d;
      }
      if (!closed) throw invalid_argument("server", "unterminated double quote");
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) throw invalid_argument("server", "empty command");
  return words;
}

}  // namespace vigo::vfs
