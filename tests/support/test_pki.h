// SPDX-License-Identifier: Apache-2.0
// Test support for TLS: throwaway certificate authorities and certificates,
// made with the OpenSSL API (EC P-256 keys, SHA-256 signatures, valid from
// an hour ago for a day) and written as PEM files into a directory the test
// owns. Header-only, shared by the unit and integration tests. Not
// thread-safe (one test owns each TestCa).
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace vigo::testing {

namespace pki_detail {

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string{"test PKI: "} + what + " failed");
}

inline EVP_PKEY* make_key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  check(key != nullptr, "EC key generation");
  return key;
}

inline void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, value.c_str());
  check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`; issuer == nullptr: self-signed.
inline X509* make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, bool expired) {
  static std::atomic<long> serial{1000};
  X509* cert = X509_new();
  check(cert != nullptr, "X509_new");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  const long day = 24 * 3600;
  X509_gmtime_adj(X509_getm_notBefore(cert), expired ? -2 * day : -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), expired ? -day : day);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  add_extension(cert, issuer != nullptr ? issuer : cert, NID_subject_key_identifier, "hash");
  if (issuer == nullptr) {
    add_extension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert, issuer, NID_authority_key_identifier, "keyid:always");
    add_extension(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert, issuer, NID_key_usage, "critical,digitalSignature");
  }
  return cert;
}

inline void sign(X509* cert, EVP_PKEY* key) { check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign"); }

inline void write_cert(const std::filesystem::path& file, X509* cert) {
  std::FILE* f = std::fopen(file.c_str(), "we");
  check(f != nullptr, "open certificate file");
  const bool ok = PEM_write_X509(f, cert) == 1;
  std::fclose(f);
  check(ok, "PEM_write_X509");
}

inline void write_key(const std::filesystem::path& file, EVP_PKEY* key) {
  std::FILE* f = std::fopen(file.c_str(), "we");
  check(f != nullptr, "open key file");
  const bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  check(ok, "PEM_write_PrivateKey");
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace pki_detail

struct CertFiles {
  std::filesystem::path cert;  // PEM certificate (leaf only)
  std::filesystem::path key;   // PEM private key, not encrypted
};

struct IssueOptions {
  std::string common_name;
  std::vector<std::string> subject_alt_names;  // "IP:127.0.0.1", "DNS:localhost"
  bool server = false;                         // extendedKeyUsage serverAuth, else clientAuth
  bool expired = false;                        // valid two days ago to yesterday
};

class TestCa {
 public:
  // Writes <dir>/<name>.pem, a self-signed CA certificate with CN=<name>.
  TestCa(const std::filesystem::path& dir, const std::string& name) : dir_(dir), cert_file_(dir / (name + ".pem")) {
    key_ = pki_detail::make_key();
    cert_ = pki_detail::make_cert(key_, name, nullptr, false);
    pki_detail::sign(cert_, key_);
    pki_detail::write_cert(cert_file_, cert_);
  }
  ~TestCa() {
    X509_free(cert_);
    EVP_PKEY_free(key_);
  }
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  [[nodiscard]] const std::filesystem::path& cert_file() const { return cert_file_; }
  // Writes <dir>/<stem>.crt and <dir>/<stem>.key, signed by this CA.
  CertFiles issue(const std::string& stem, const IssueOptions& o) {
    using namespace pki_detail;
    EVP_PKEY* key = make_key();
    X509* cert = make_cert(key, o.common_name, cert_, o.expired);
    add_extension(cert, cert_, NID_ext_key_usage, o.server ? "serverAuth" : "clientAuth");
    if (!o.subject_alt_names.empty()) {
      std::string sans;
      for (const auto& s : o.subject_alt_names) sans += (sans.empty() ? "" : ",") + s;
      add_extension(cert, cert_, NID_subject_alt_name, sans);
    }
    sign(cert, key_);
    CertFiles files{dir_ / (stem + ".crt"), dir_ / (stem + ".key")};
    write_cert(files.cert, cert);
    write_key(files.key, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return files;
  }

 private:
  std::filesystem::path dir_;
  std::filesystem::path cert_file_;
  EVP_PKEY* key_ = nullptr;
  X509* cert_ = nullptr;
};

}  // namespace vigo::testing
