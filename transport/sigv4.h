/* AWS Signature Version 4 for S3: canonical request, string to sign, signing key, Authorization. */
#ifndef TRANSPORT_SIGV4_H
#define TRANSPORT_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Everything here is a pure function of its arguments: the time comes in as a value
 * (an x-amz-date string or a time_t), never from the system clock, so tests are
 * deterministic. Nothing sends anything; transport/s3*.c builds requests around it.
 *
 * The algorithm, as S3 checks it (a 15-minute clock skew is allowed):
 *
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n HashedPayload
 *     CanonicalURI     the raw path with every byte but A-Z a-z 0-9 - _ . ~ and '/'
 *                      written %XX (upper-case hex); S3 paths are encoded once and not
 *                      normalised ("a//b", "./" stay as they are)
 *     CanonicalQuery   each name and value encoded like the path but with '/' encoded
 *                      too, "name=value" pairs sorted by name then value, joined by '&';
 *                      a parameter without a value is "name="
 *     CanonicalHeaders "lowercase-name:value\n" per header, sorted by name; the value is
 *                      trimmed and each run of spaces or tabs becomes one space; repeated
 *                      names join their values with ','
 *     SignedHeaders    the lowercase names joined by ';'
 *     HashedPayload    hex SHA-256 of the body, or UNSIGNED-PAYLOAD
 *   StringToSign     = "AWS4-HMAC-SHA256" \n AmzDate \n Scope \n hex(SHA256(CanonicalRequest))
 *   Scope            = YYYYMMDD/region/service/aws4_request
 *   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, YYYYMMDD), region), service),
 *                      "aws4_request")
 *   Authorization    = "AWS4-HMAC-SHA256 Credential=AKID/Scope, SignedHeaders=..., Signature=hex"
 *
 * The caller decides which headers are signed by listing them: S3 wants at least host,
 * x-amz-date and x-amz-content-sha256, plus x-amz-security-token with temporary
 * credentials, and every header the request sends whose change would matter (range,
 * content-type, content-md5, if-none-match). The header values given here must be
 * byte-for-byte what goes on the wire.
 */

#define SIGV4_AMZ_DATE_LEN 16   /* "20130524T000000Z" */
#define SIGV4_SHA256_HEX_LEN 64
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A query parameter, raw (not yet percent-encoded); value "" for "?uploads". */
struct sigv4_param {
	const char *name;
	const char *value;
};

/* A request header as sent; the name in any case. */
struct sigv4_header {
	const char *name;
	const char *value;
};

/* What is signed. Borrowed pointers; nothing is kept after the call. */
struct sigv4_request {
	const char *method;                /* "GET", "PUT", ...: upper-case letters */
	const char *path;                  /* raw, starts with '/': "/bucket/a key" */
	const struct sigv4_param *query;
	size_t query_count;
	const struct sigv4_header *headers; /* every header to sign, host included */
	size_t header_count;
	const char *payload_hash;          /* 64 lower-case hex digits or UNSIGNED-PAYLOAD */
};

/* Who signs, and for which scope. Borrowed pointers. */
struct sigv4_credentials {
	const char *access_key;
	const char *secret_key;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3" */
};

/* Format t (seconds since the epoch, UTC) as an x-amz-date (t, out). */
void sigv4_amz_date(time_t t, char out[SIGV4_AMZ_DATE_LEN + 1]);

/* Hex SHA-256 of len bytes (data, len, out). Returns 0 or -EIO (OpenSSL failure). */
int sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_SHA256_HEX_LEN + 1]);

/*
 * Percent-encode len bytes of in the SigV4 way (out, in, len, keep_slash), appending to a
 * malloc'd string in *out. keep_slash leaves '/' alone (paths); query names and values
 * encode it. Returns 0, -ENOMEM; on success the caller frees *out.
 */
int sigv4_uri_encode(char **out, const char *in, size_t len, bool keep_slash);

/*
 * The canonical query string of count parameters (out, query, count): also a valid URL
 * query, so a client sends exactly this after '?'. Returns 0, -EINVAL (NULL name or
 * value), -ENOMEM; the caller frees *out ("" for no parameters).
 */
int sigv4_canonical_query(char **out, const struct sigv4_param *query, size_t count);

/*
 * The canonical request and its signed-header list (out, signed_headers, req);
 * signed_headers may be NULL. Returns 0; -EINVAL for a malformed method, a path not
 * starting with '/', a header name that is not an HTTP token, a header value holding CR,
 * LF or NUL, no headers, or a payload hash that is neither 64 lower-case hex digits nor
 * UNSIGNED-PAYLOAD; -ENOMEM. The caller frees both strings.
 */
int sigv4_canonical_request(char **out, char **signed_headers, const struct sigv4_request *req);

/*
 * The string to sign for a canonical request (out, amz_date, region, service,
 * canonical_request). Returns 0, -EINVAL for an amz_date not shaped YYYYMMDDTHHMMSSZ or
 * an empty region or service, -ENOMEM, -EIO; the caller frees *out.
 */
int sigv4_string_to_sign(char **out, const char *amz_date, const char *region,
			 const char *service, const char *canonical_request);

/*
 * Derive the signing key for one day and scope (key, secret_key, date, region, service);
 * date is YYYYMMDD (the first 8 characters of an x-amz-date). Returns 0, -EINVAL, -EIO.
 */
int sigv4_signing_key(uint8_t key[32], const char *secret_key, const char *date,
		      const char *region, const char *service);

/*
 * Sign req at amz_date (out, req, cred, amz_date) and return the Authorization header
 * value in *out (malloc'd, the caller frees it). amz_date must equal the x-amz-date
 * header in req when one is signed. The format matches botocore byte for byte: fields
 * separated by ", ". Returns 0, -EINVAL (as above, or an empty access or secret key),
 * -ENOMEM, -EIO.
 */
int sigv4_authorization(char **out, const struct sigv4_request *req,
			const struct sigv4_credentials *cred, const char *amz_date);

#endif
