/* TLS contexts for godwit's two ways to authenticate: external PSK and mutual certificates. */
#include "transport/tls_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* The cipher suite of PSK mode, TLS_AES_256_GCM_SHA384, by its wire bytes. */
static const unsigned char tls_psk_suite[2] = { 0x13, 0x02 };

static SSL_SESSION *tls_psk_session(struct tls_stream *t, const SSL_CIPHER *cipher)
{
	SSL_SESSION *sess = SSL_SESSION_new();

	if (!sess)
		return NULL;
	if (!SSL_SESSION_set1_master_key(sess, t->psk.key, sizeof(t->psk.key)) ||
	    !SSL_SESSION_set_cipher(sess, cipher) ||
	    !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION)) {
		SSL_SESSION_free(sess);
		return NULL;
	}
	return sess;
}

/* Client: offer our PSK (for a SHA-384 suite only; md is set after a HelloRetryRequest). */
static int tls_psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *id_len,
			  SSL_SESSION **sess)
{
	struct tls_stream *t = SSL_get_app_data(ssl);
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, tls_psk_suite);

	*sess = NULL;
	if (!cipher)
		return 0;
	if (md && EVP_MD_get_type(md) != NID_sha384)
		return 1;
	*sess = tls_psk_session(t, cipher);
	if (!*sess)
		return 0;
	*id = (const unsigned char *)TLS_PSK_IDENTITY;
	*id_len = strlen(TLS_PSK_IDENTITY);
	return 1;
}

/* Server: accept exactly our identity; OpenSSL then checks the binder with our key. */
static int tls_psk_find_cb(SSL *ssl, const unsigned char *id, size_t id_len, SSL_SESSION **sess)
{
	struct tls_stream *t = SSL_get_app_data(ssl);
	const SSL_CIPHER *cipher;

	*sess = NULL;
	t->psk_offered = true;
	if (id_len != strlen(TLS_PSK_IDENTITY) || memcmp(id, TLS_PSK_IDENTITY, id_len) != 0) {
		t->psk_unknown_id = true;
		return 1;
	}
	cipher = SSL_CIPHER_find(ssl, tls_psk_suite);
	if (!cipher)
		return 0;
	*sess = tls_psk_session(t, cipher);
	return *sess ? 1 : 0;
}

/* Client, PSK mode: a server that authenticates with a certificate is not our peer. */
static int tls_psk_refuse_cert_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_stream *t = SSL_get_app_data(ssl);

	(void)ok;
	t->cert_in_psk_mode = true;
	return 0;
}
/* Check a file is readable before OpenSSL gets a chance to bury the reason. */
static int tls_check_file(struct tls_stream *t, const char *what, const char *path)
{
	if (!path)
		return tls_error_set(t, -EINVAL, "tls config: no %s file", what);
	if (access(path, R_OK) < 0)
		return tls_error_set(t, -errno, "%s file %s: %s", what, path, strerror(errno));
	return 0;
}

static int tls_config_cert(struct tls_stream *t, const struct tls_config *cfg)
{
	bool have_cert = cfg->cert_file || cfg->key_file;
	char why[160];
	int rc;

	/* A client without a certificate is allowed only so the refusal can be tested. */
	if (t->server || have_cert) {
		rc = tls_check_file(t, "certificate", cfg->cert_file);
		if (rc == 0)
			rc = tls_check_file(t, "key", cfg->key_file);
		if (rc < 0)
			return rc;
		if (SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1) {
			ERR_error_string_n(ERR_get_error(), why, sizeof(why));
			return tls_error_set(t, -EINVAL, "certificate file %s: %s", cfg->cert_file, why);
		}
		if (SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
			unsigned long e = ERR_get_error();

			if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
				return tls_error_set(t, -EINVAL, "key file %s does not match certificate %s",
						cfg->key_file, cfg->cert_file);
			ERR_error_string_n(e, why, sizeof(why));
			return tls_error_set(t, -EINVAL, "key file %s: %s", cfg->key_file, why);
		}
		if (SSL_CTX_check_private_key(t->ctx) != 1)
			return tls_error_set(t, -EINVAL, "key file %s does not match certificate %s",
					cfg->key_file, cfg->cert_file);
	}
	rc = tls_check_file(t, "CA", cfg->ca_file);
	if (rc < 0)
		return rc;
	if (SSL_CTX_load_verify_file(t->ctx, cfg->ca_file) != 1) {
		ERR_error_string_n(ERR_get_error(), why, sizeof(why));
		return tls_error_set(t, -EINVAL, "CA file %s: %s", cfg->ca_file, why);
	}
	/*
	 * The peer's certificate must be meant for its side: a server's for serverAuth, a
	 * client's for clientAuth (a certificate without extendedKeyUsage serves both).
	 */
	if (SSL_CTX_set_purpose(t->ctx, t->server ? X509_PURPOSE_SSL_CLIENT
						   : X509_PURPOSE_SSL_SERVER) != 1)
		return tls_error_set(t, -EIO, "cannot set the certificate purpose check");
	if (t->server) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);

		if (names)
			SSL_CTX_set_client_CA_list(t->ctx, names);
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	} else {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	}
	ERR_clear_error();
	return 0;
}

int tls_config_ctx(struct tls_stream *t, const struct tls_config *cfg)
{
	t->ctx = SSL_CTX_new(t->server ? TLS_server_method() : TLS_client_method());
	if (!t->ctx)
		return tls_error_set(t, -ENOMEM, "SSL_CTX_new failed");
	if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION) != 1)
		return tls_error_set(t, -EIO, "this OpenSSL cannot restrict itself to TLS 1.3");
	/* No resumption: every connection authenticates afresh. */
	SSL_CTX_set_num_tickets(t->ctx, 0);
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	if (cfg->auth == TLS_AUTH_CERT)
		return tls_config_cert(t, cfg);
	if (SSL_CTX_set_ciphersuites(t->ctx, "TLS_AES_256_GCM_SHA384") != 1)
		return tls_error_set(t, -EIO, "cannot select TLS_AES_256_GCM_SHA384");
	if (t->server) {
		SSL_CTX_set_psk_find_session_callback(t->ctx, tls_psk_find_cb);
	} else {
		SSL_CTX_set_psk_use_session_callback(t->ctx, tls_psk_use_cb);
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, tls_psk_refuse_cert_cb);
	}
	return 0;
}
int tls_config_peer_name(struct tls_stream *t, const struct tls_config *cfg)
{
	unsigned char addr[16];

	if (cfg->auth != TLS_AUTH_CERT || !cfg->server_name)
		return 0;
	if (inet_pton(AF_INET, cfg->server_name, addr) == 1 ||
	    inet_pton(AF_INET6, cfg->server_name, addr) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), cfg->server_name) != 1)
			return tls_error_set(t, -EINVAL, "bad server address %s", cfg->server_name);
	} else if (SSL_set_tlsext_host_name(t->ssl, cfg->server_name) != 1 ||
		   SSL_set1_host(t->ssl, cfg->server_name) != 1) {
		return tls_error_set(t, -EINVAL, "bad server name %s", cfg->server_name);
	}
	return 0;
}
