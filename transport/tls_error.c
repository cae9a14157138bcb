/* Why a TLS handshake or read failed, as a return code and one sentence for people. */
#include "transport/tls_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509.h>

int tls_error_set(struct tls_stream *t, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->errmsg, sizeof(t->errmsg), fmt, ap);
	va_end(ap);
	return rc;
}

/* Verify results that mean "signed by someone we do not trust". */
static bool tls_issuer_problem(long v)
{
	return v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	       v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT || v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
	       v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || v == X509_V_ERR_CERT_SIGNATURE_FAILURE;
}

/* Describe the OpenSSL error queue (ssl_err from SSL_get_error) and return a code. */
int tls_error_explain(struct tls_stream *t, int ssl_err, bool handshake)
{
	const char *peer = t->server ? "client" : "server";
	unsigned long e, first = 0;
	int rc = 0;

	while (rc == 0 && (e = ERR_get_error()) != 0) {
		if (!first)
			first = e;
		if (ERR_GET_LIB(e) != ERR_LIB_SSL)
			continue;
		switch (ERR_GET_REASON(e)) {
		case SSL_R_BINDER_DOES_NOT_VERIFY:
			rc = tls_error_set(t, -EKEYREJECTED,
				      "wrong PSK: the client's key differs from ours (binder does not verify)");
			break;
		case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
		case SSL_R_SSLV3_ALERT_ILLEGAL_PARAMETER:
			if (t->auth == TLS_AUTH_PSK)
				rc = tls_error_set(t, -EKEYREJECTED,
					      "wrong PSK: the %s rejected our key (alert %s)", peer,
					      ERR_reason_error_string(e));
			else
				rc = tls_error_set(t, -EPROTO, "the %s aborted the handshake (alert %s)",
					      peer, ERR_reason_error_string(e));
			break;
		case SSL_R_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY:
			rc = tls_error_set(t, -EKEYREJECTED, "the %s does not know PSK identity \"%s\"",
				      peer, TLS_PSK_IDENTITY);
			break;
		case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
		case SSL_R_NO_SHARED_CIPHER:
			if (t->auth != TLS_AUTH_PSK || !t->server)
				break;
			if (t->psk_unknown_id)
				rc = tls_error_set(t, -EKEYREJECTED,
					      "the client offered a PSK under an unknown identity");
			else
				rc = tls_error_set(t, -EACCES,
					      "the client offered no PSK (is it set up for certificates?)");
			break;
		case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
			rc = tls_error_set(t, -EACCES,
				      "the %s refused the handshake (handshake_failure alert): do both ends use the same authentication mode?",
				      peer);
			break;
		case SSL_R_CERTIFICATE_VERIFY_FAILED:
			if (t->cert_in_psk_mode)
				rc = tls_error_set(t, -EACCES,
					      "the server presented a certificate instead of using the PSK: it is not in PSK mode");
			else
				rc = tls_error_set(t, -EACCES, "%s certificate rejected: %s%s", peer,
					      X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)),
					      tls_issuer_problem(SSL_get_verify_result(t->ssl))
						      ? " (not issued by a CA in our CA file)" : "");
			break;
		case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
			rc = tls_error_set(t, -EACCES,
				      "the %s rejected our certificate: unknown CA (signed by a CA it does not trust)",
				      peer);
			break;
		case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
		case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
			rc = tls_error_set(t, -EACCES, "the %s rejected our certificate (alert %s)", peer,
				      ERR_reason_error_string(e));
			break;
		case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
			rc = tls_error_set(t, -EACCES,
				      "the client sent no certificate; this server requires one signed by its CA");
			break;
		case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
			rc = tls_error_set(t, -EACCES,
				      "the server requires a client certificate and we sent none");
			break;
		case SSL_R_WRONG_VERSION_NUMBER:
		case SSL_R_PACKET_LENGTH_TOO_LONG:
		case SSL_R_HTTP_REQUEST:
		case SSL_R_HTTPS_PROXY_REQUEST:
		case SSL_R_UNEXPECTED_RECORD:
		case SSL_R_BAD_RECORD_TYPE:
		case SSL_R_LENGTH_TOO_SHORT:
			rc = tls_error_set(t, -EPROTO,
				      "the %s is not speaking TLS (its bytes are not TLS records: %s)", peer,
				      ERR_reason_error_string(e));
			break;
		case SSL_R_UNSUPPORTED_PROTOCOL:
		case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		case SSL_R_NO_PROTOCOLS_AVAILABLE:
			rc = tls_error_set(t, -EPROTO, "the %s does not speak TLS 1.3", peer);
			break;
		case SSL_R_UNEXPECTED_EOF_WHILE_READING:
			if (handshake)
				rc = tls_error_set(t, -ECONNRESET,
					      "the %s closed the connection during the handshake", peer);
			else
				rc = tls_error_set(t, -EPROTO,
					      "the %s closed the connection without close_notify: stream truncated",
					      peer);
			break;
		}
	}
	ERR_clear_error();
	if (rc)
		return rc;
	if (ssl_err == SSL_ERROR_SYSCALL && t->sock_errno)
		return tls_error_set(t, -t->sock_errno, "connection to the %s failed: %s", peer,
				strerror(t->sock_errno));
	if (t->sock_eof)
		return tls_error_set(t, handshake ? -ECONNRESET : -EPROTO,
				handshake ? "the %s closed the connection during the handshake"
					  : "the %s closed the connection without close_notify: stream truncated",
				peer);
	if (first) {
		char buf[160];

		ERR_error_string_n(first, buf, sizeof(buf));
		return tls_error_set(t, -EPROTO, "TLS %s failed: %s", handshake ? "handshake" : "I/O", buf);
	}
	return tls_error_set(t, -EIO, "TLS %s failed (SSL error %d)", handshake ? "handshake" : "I/O",
			ssl_err);
}
