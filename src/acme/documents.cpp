#include "acme/documents.hpp"

#include <algorithm>
#include <initializer_list>

#include "acme/dates.hpp"

namespace sniroute::acme {

using nlohmann::json;

namespace {

// JSON text of a member for an error message. dump() cannot meet invalid UTF-8 in a parsed
// document, but replacing it rather than throwing keeps that true of any json.
std::string text_of(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A cursor over one JSON object of a document, naming every field it complains about by its
// path from the document: "authorization: challenges[1].url is not a string".
class Fields {
public:
    Fields(const json& obj, std::string doc, std::string path = "")
        : obj_(obj), doc_(std::move(doc)), path_(std::move(path)) {
        if (!obj_.is_object()) fail(path_.empty() ? "is not a JSON object" : "is not an object", path_);
    }

    [[noreturn]] void fail(std::string_view what, std::string_view field) const {
        std::string where = field.empty() ? "" : std::string(field) + " ";
        throw DocumentError(doc_ + ": " + where + std::string(what));
    }
    std::string name(std::string_view key) const {
        return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    }

    const json* find(std::string_view key) const {
        auto it = obj_.find(key);
        return it == obj_.end() ? nullptr : &*it;
    }
    // A string member; `fallback` when absent, an error when required and absent.
    std::string str(std::string_view key, bool required, std::string fallback = "") const {
        const json* v = find(key);
        if (!v) {
            if (required) fail("is missing", name(key));
            return fallback;
        }
        if (!v->is_string()) fail("is not a string", name(key));
        return v->get_ref<const std::string&>();
    }
    std::string url(std::string_view key, bool required) const {
        std::string u = str(key, required);
        if (!u.empty() || required) check_url(u, name(key));
        return u;
    }
    // A string out of `allowed`.
    std::string state(std::string_view key, std::initializer_list<std::string_view> allowed, bool required) const {
        std::string s = str(key, required);
        if ((required || !s.empty()) && std::find(allowed.begin(), allowed.end(), s) == allowed.end())
            fail("is not a known status: \"" + s.substr(0, 64) + "\"", name(key));
        return s;
    }
    // An array member, at most kMaxJsonArray long; an empty one when absent.
    const json& array(std::string_view key) const {
        static const json kEmpty = json::array();
        const json* v = find(key);
        if (!v) return kEmpty;
        if (!v->is_array()) fail("is not an array", name(key));
        if (v->size() > kMaxJsonArray) fail("has more than " + std::to_string(kMaxJsonArray) + " entries", name(key));
        return *v;
    }
    // An array of strings, each checked by `check` if given.
    std::vector<std::string> strings(std::string_view key, bool urls) const {
        std::vector<std::string> out;
        const json& a = array(key);
        for (size_t i = 0; i < a.size(); ++i) {
            std::string at = name(key) + "[" + std::to_string(i) + "]";
            if (!a[i].is_string()) fail("is not a string", at);
            out.push_back(a[i].get<std::string>());
            if (urls) check_url(out.back(), at);
        }
        return out;
    }
    void check_url(const std::string& u, const std::string& field) const {
        if (!is_acme_url(u)) fail("is not an https URL: \"" + u.substr(0, 64) + "\"", field);
    }
    const std::string& doc() const { return doc_; }

private:
    const json& obj_;
    std::string doc_;
    std::string path_;
};

}  // namespace

json parse_document(std::string_view body, std::string_view what) {
    // nlohmann-json's parser is iterative, but dump() and the readers recurse; the callback
    // sees every value with its depth and stops keeping values once one is too deep.
    bool too_deep = false;
    json j = json::parse(
        body.begin(), body.end(),
        [&too_deep](int depth, json::parse_event_t, json&) {
            if (depth > kMaxJsonDepth) too_deep = true;
            return !too_deep;
        },
        false);
    if (too_deep)
        throw DocumentError(std::string(what) + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                            " levels");
    if (j.is_discarded() || !j.is_object()) throw DocumentError(std::string(what) + ": CA answered with invalid JSON");
    return j;
}

bool is_acme_url(std::string_view u) {
    constexpr std::string_view scheme = "https://";
    if (!u.starts_with(scheme)) return false;
    std::string_view rest = u.substr(scheme.size());
    if (rest.empty() || rest.front() == '/' || rest.front() == '?' || rest.front() == '#') return false;
    return std::all_of(u.begin(), u.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

Directory parse_directory(const json& doc) {
    Fields f(doc, "directory");
    Directory d;
    d.new_nonce = f.url("newNonce", true);
    d.new_account = f.url("newAccount", true);
    d.new_order = f.url("newOrder", true);
    d.renewal_info = f.url("renewalInfo", false);
    return d;
}

Account parse_account(const json& doc) {
    Fields f(doc, "account");
    Account a;
    a.status = f.state("status", {"valid", "deactivated", "revoked"}, true);
    a.contact = f.strings("contact", false);
    a.orders = f.url("orders", false);
    return a;
}

Order parse_order(const json& doc) {
    Fields f(doc, "order");
    Order o;
    o.status = f.state("status", {"pending", "ready", "processing", "valid", "invalid"}, true);
    o.authorizations = f.strings("authorizations", true);
    o.finalize = f.url("finalize", o.status == "ready");
    o.certificate = f.url("certificate", o.status == "valid");
    if (const json* e = f.find("error")) o.error = text_of(*e);
    return o;
}

Authorization parse_authorization(const json& doc) {
    Fields f(doc, "authorization");
    Authorization a;
    a.status = f.state("status", {"pending", "valid", "invalid", "deactivated", "expired", "revoked"}, true);
    if (f.find("identifier")) {
        Fields id(*f.find("identifier"), f.doc(), "identifier");
        a.identifier_type = id.str("type", true);
        a.identifier_value = id.str("value", true);
    }
    const json& challenges = f.array("challenges");
    for (size_t i = 0; i < challenges.size(); ++i) {
        Fields c(challenges[i], f.doc(), "challenges[" + std::to_string(i) + "]");
        Challenge ch;
        ch.type = c.str("type", true);
        if (ch.type.empty()) c.fail("is empty", c.name("type"));
        ch.url = c.url("url", true);
        ch.status = c.state("status", {"pending", "processing", "valid", "invalid"}, false);
        ch.token = c.str("token", false);
        if (const json* e = c.find("error")) {
            // The problem's detail when it has one, as a person reads it; the JSON otherwise.
            auto detail = e->is_object() ? e->find("detail") : e->end();
            ch.error =
                e->is_object() && detail != e->end() && detail->is_string() ? detail->get<std::string>() : text_of(*e);
        }
        a.challenges.push_back(std::move(ch));
    }
    return a;
}

std::string Authorization::failure() const {
    std::string why;
    for (const auto& c : challenges)
        if (!c.error.empty()) why = c.error;
    return why;
}

RenewalInfo parse_renewal_info(const json& doc) {
    Fields f(doc, "renewalInfo");
    const json* w = f.find("suggestedWindow");
    if (!w) f.fail("is missing", "suggestedWindow");
    Fields window(*w, f.doc(), "suggestedWindow");
    RenewalInfo info;
    for (auto [key, out] : {std::pair{"start", &info.start}, std::pair{"end", &info.end}}) {
        std::string text = window.str(key, true);
        auto t = parse_rfc3339(text);
        if (!t) window.fail("is not an RFC 3339 date-time: \"" + text.substr(0, 64) + "\"", window.name(key));
        *out = *t;
    }
    if (info.end < info.start) f.fail("ends before it starts", "suggestedWindow");
    info.explanation_url = f.str("explanationURL", false);
    return info;
}

Problem read_problem_body(std::string_view body) {
    json j = json::parse(
        body.begin(), body.end(), [](int depth, json::parse_event_t, json&) { return depth <= kMaxJsonDepth; }, false);
    return read_problem(j);
}

Problem read_problem(const json& doc) {
    Problem p;
    if (!doc.is_object()) return p;
    if (auto t = doc.find("type"); t != doc.end() && t->is_string()) p.type = t->get<std::string>();
    if (auto d = doc.find("detail"); d != doc.end() && d->is_string()) p.detail = d->get<std::string>();
    if (auto s = doc.find("status"); s != doc.end() && s->is_number_integer()) {
        auto v = s->get<int64_t>();
        if (v >= 100 && v <= 599) p.status = static_cast<int>(v);
    }
    return p;
}

}  // namespace sniroute::acme
