// UTF-8 encoding of single code points, shared by the tokenizers, the chat
// template interpreter and the text parsers.
#pragma once

#include <string>

namespace xnai {

// Appends the UTF-8 encoding of `cp`; code points that cannot be encoded
// (surrogates, beyond U+10FFFF) become U+FFFD.
void AppendUtf8(std::string& out, char32_t cp);

}  // namespace xnai
