// base64url without padding (RFC 4648 section 5, as JOSE uses it: RFC 7515 section 2).
//
// Every binary value on the ACME wire is in this form: JWS parts, JWK coordinates, the CSR,
// challenge tokens and EAB HMAC keys. Plain base64 never appears, so there is no decoder for it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sniroute::acme {

// Encodes bytes with the URL-safe alphabet ('-' and '_') and no '=' padding.
std::string b64url_encode(std::string_view bytes);

// Decodes unpadded base64url. Returns nullopt for any character outside the alphabet
// (including '=', '+', '/' and whitespace), for an impossible length (4n+1), and for
// non-zero leftover bits in the last character, so that every accepted input is the one
// canonical encoding of its bytes and decode(encode(x)) == x in both directions.
std::optional<std::string> b64url_decode(std::string_view text);

}  // namespace sniroute::acme
