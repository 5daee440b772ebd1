// Wiring an llhttp parser to the object that owns it, for every llhttp user in sniroute (the
// port-80 front's request heads and the ACME client's responses).
//
// llhttp is C: an exception thrown by a callback would unwind through its frames. The callback
// types below are noexcept function pointers, so a callback that is not noexcept does not
// compile here; each callback keeps its exceptions to itself.
#pragma once

#include <llhttp.h>

#include <cstddef>

namespace sniroute::http {

using DataCallback = int (*)(llhttp_t*, const char* at, size_t n) noexcept;
using EventCallback = int (*)(llhttp_t*) noexcept;

// The callbacks sniroute's parsers use, in llhttp's order; a null one is not called.
struct ParserCallbacks {
    DataCallback on_url = nullptr;
    DataCallback on_header_field = nullptr;
    DataCallback on_header_value = nullptr;
    EventCallback on_headers_complete = nullptr;
    DataCallback on_body = nullptr;
    EventCallback on_message_complete = nullptr;
    EventCallback on_header_field_complete = nullptr;
    EventCallback on_header_value_complete = nullptr;
};

// Fills `settings` from `cb`, then starts `parser` as a fresh parser of `type` over them with
// `owner` as its data. Calling it again restarts the parser. llhttp keeps a pointer to
// `settings`, so it must live as long as `parser`.
//
// Every leniency llhttp 8.1 has a switch for is off: headers (invalid value bytes),
// chunked_length (Transfer-Encoding with Content-Length), keep_alive (requests after
// "Connection: close"), transfer_encoding (codings after chunked). LENIENT_VERSION has a flag
// but no setter in 8.1, so the flags are cleared as a whole too. The leniencies of Debian's
// loose build that have no switch at all (a CR without LF, an LF without CR, extra spaces and
// control bytes in the request line, obs-fold) are refused before llhttp by the line scanner
// of http/request_head.cpp; a parser of responses (the ACME client's) does not forward what it
// reads, so it lives with them.
inline void start_parser(llhttp_t& parser, llhttp_settings_t& settings, llhttp_type_t type, const ParserCallbacks& cb,
                         void* owner) noexcept {
    llhttp_settings_init(&settings);
    settings.on_url = cb.on_url;
    settings.on_header_field = cb.on_header_field;
    settings.on_header_value = cb.on_header_value;
    settings.on_headers_complete = cb.on_headers_complete;
    settings.on_body = cb.on_body;
    settings.on_message_complete = cb.on_message_complete;
    settings.on_header_field_complete = cb.on_header_field_complete;
    settings.on_header_value_complete = cb.on_header_value_complete;
    llhttp_init(&parser, type, &settings);
    llhttp_set_lenient_headers(&parser, 0);
    llhttp_set_lenient_chunked_length(&parser, 0);
    llhttp_set_lenient_keep_alive(&parser, 0);
    llhttp_set_lenient_transfer_encoding(&parser, 0);
    parser.lenient_flags = 0;
    parser.data = owner;
}

}  // namespace sniroute::http
