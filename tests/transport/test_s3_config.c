/* Tests for S3 configuration: AWS environment and profiles, endpoint URLs, addressing, client checks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "transport/s3.h"
#include "transport/s3_priv.h"

static char dir[256];

static const char *const aws_vars[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
	"AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
};

static void setup(void)
{
	char home[300];

	tmpdir_make(dir, sizeof(dir));
	for (size_t i = 0; i < sizeof(aws_vars) / sizeof(aws_vars[0]); i++)
		unsetenv(aws_vars[i]);
	/* A HOME without ~/.aws, so the machine's own files never leak in. */
	snprintf(home, sizeof(home), "%s", dir);
	setenv("HOME", home, 1);
}

static void teardown(void)
{
	tmpdir_remove(dir);
}

TestSuite(s3_config, .init = setup, .fini = teardown, .timeout = 30);

static void write_file(const char *name, const char *text, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static const char creds_text[] =
	"# comment\n"
	"[default]\n"
	"aws_access_key_id = AKIDDEFAULT\n"
	"aws_secret_access_key=secretdefault  \r\n"
	"\n"
	"[work]\n"
	"AWS_ACCESS_KEY_ID=AKIDWORK\n"
	"aws_secret_access_key = secret=work/+\n"
	"aws_session_token = TOKENWORK\n"
	"s3 =\n"
	"    aws_access_key_id = NESTED_NOT_THIS\n"
	"[half]\n"
	"aws_access_key_id = AKIDHALF\n";

Test(s3_config, defaults)
{
	struct s3_config cfg;

	s3_config_init(&cfg);
	cr_assert_str_eq(cfg.region, "us-east-1");
	cr_assert_eq(cfg.addressing, S3_ADDRESSING_AUTO);
	cr_assert_eq(cfg.multipart_threshold, (size_t)16 << 20);
	cr_assert_eq(cfg.parallelism, 4);
	cr_assert_eq(cfg.max_retries, 1000);
	cr_assert_eq(cfg.retry_max_ms, 20000);
	cr_assert_eq(cfg.retry_budget_ms, 300000, "minutes, not seconds");
}

Test(s3_config, environment_keys_win_over_the_profile)
{
	struct s3_config cfg;
	char path[512], err[256];

	write_file("creds", creds_text, path, sizeof(path));
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
	setenv("AWS_PROFILE", "work", 1);
	setenv("AWS_DEFAULT_REGION", "eu-west-2", 1);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000", 1);
	s3_config_init(&cfg);
	cr_assert_eq(s3_config_from_env(&cfg, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.access_key, "AKIDENV");
	cr_assert_str_eq(cfg.secret_key, "secretenv");
	cr_assert_str_eq(cfg.session_token, "tokenenv");
	cr_assert_str_eq(cfg.region, "eu-west-2");
	cr_assert_str_eq(cfg.endpoint, "http://127.0.0.1:9000");
	setenv("AWS_REGION", "ap-south-1", 1);
	setenv("AWS_ENDPOINT_URL_S3", "http://s3.local:1", 1);
	cr_assert_eq(s3_config_from_env(&cfg, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.region, "ap-south-1");
	cr_assert_str_eq(cfg.endpoint, "http://s3.local:1");
}

Test(s3_config, profiles_from_the_shared_credentials_file)
{
	struct s3_config cfg;
	char path[512], cpath[512], err[256];

	write_file("creds", creds_text, path, sizeof(path));
	write_file("config", "[default]\nregion = eu-central-1\n[profile work]\nregion=us-west-2\n",
		   cpath, sizeof(cpath));
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_CONFIG_FILE", cpath, 1);
	s3_config_init(&cfg);
	cr_assert_eq(s3_config_from_env(&cfg, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.access_key, "AKIDDEFAULT");
	cr_assert_str_eq(cfg.secret_key, "secretdefault");
	cr_assert_str_eq(cfg.session_token, "");
	cr_assert_str_eq(cfg.region, "eu-central-1");

	setenv("AWS_PROFILE", "work", 1);
	s3_config_init(&cfg);
	cr_assert_eq(s3_config_from_env(&cfg, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.access_key, "AKIDWORK", "nested keys must not count");
	cr_assert_str_eq(cfg.secret_key, "secret=work/+");
	cr_assert_str_eq(cfg.session_token, "TOKENWORK");
	cr_assert_str_eq(cfg.region, "us-west-2");

	/* An explicit profile beats AWS_PROFILE. */
	s3_config_init(&cfg);
	cr_assert_eq(s3_config_from_env(&cfg, "default", err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.access_key, "AKIDDEFAULT");
}

Test(s3_config, missing_or_broken_credentials_say_what_to_set)
{
	struct s3_config cfg;
	char path[512], err[256];

	s3_config_init(&cfg);
	cr_assert_eq(s3_config_from_env(&cfg, NULL, err, sizeof(err)), -ENOKEY);
	cr_assert(strstr(err, "AWS_ACCESS_KEY_ID"), "%s", err);

	write_file("creds", creds_text, path, sizeof(path));
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	cr_assert_eq(s3_config_from_env(&cfg, "nosuch", err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "[nosuch]"), "%s", err);
	cr_assert_eq(s3_config_from_env(&cfg, "half", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "aws_secret_access_key"), "%s", err);

	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	setenv("AWS_ACCESS_KEY_ID", "AKIDONLY", 1);
	cr_assert_eq(s3_config_from_env(&cfg, NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "AWS_SECRET_ACCESS_KEY"), "%s", err);
}

Test(s3_config, ini_reader_edge_cases)
{
	char v[16];
	bool found;

	cr_assert_eq(s3_ini_get("[a]\nk=1\n[b]\nk=2", "b", "k", v, sizeof(v), &found), 0);
	cr_assert_str_eq(v, "2");
	cr_assert_eq(s3_ini_get("[ a ]\n; c\n  k = 1\nk = \n", "a", "k", v, sizeof(v), &found), 0);
	cr_assert_str_eq(v, "", "indented lines are nested, the empty value counts");
	cr_assert_eq(s3_ini_get("[a]\nk=1\n", "b", "k", v, sizeof(v), &found), -ENOENT);
	cr_assert_not(found);
	cr_assert_eq(s3_ini_get("[a]\nx=1\n", "a", "k", v, sizeof(v), &found), -ENOENT);
	cr_assert(found);
	cr_assert_eq(s3_ini_get("[a]\nk=0123456789abcdef\n", "a", "k", v, sizeof(v), &found),
		     -ENAMETOOLONG);
	cr_assert_eq(s3_ini_get("[a\nk=1\n[]\nk=2", "a", "k", v, sizeof(v), &found), -ENOENT);
}

Test(s3_config, endpoint_urls)
{
	struct s3_endpoint ep;

	cr_assert_eq(s3_endpoint_parse("http://127.0.0.1:9000", &ep), 0);
	cr_assert_not(ep.https);
	cr_assert_str_eq(ep.host, "127.0.0.1");
	cr_assert_eq(ep.port, 9000);
	cr_assert(ep.host_is_ip);
	cr_assert_eq(s3_endpoint_parse("HTTPS://S3.EU-West-1.amazonaws.com/", &ep), 0);
	cr_assert(ep.https);
	cr_assert_str_eq(ep.host, "s3.eu-west-1.amazonaws.com");
	cr_assert_eq(ep.port, 0);
	cr_assert_not(ep.host_is_ip);
	cr_assert_eq(s3_endpoint_parse("http://[::1]:9000", &ep), 0);
	cr_assert_str_eq(ep.host, "::1");
	cr_assert(ep.host_is_ip);
	static const char *const bad[] = {
		"ftp://h", "h:9000", "http://", "http://h:", "http://h:0", "http://h:65536",
		"http://h/path", "http://h?x", "http://u@h", "http://[::1", "http://[zz]:1",
		"http://h h", "http://h:9x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(s3_endpoint_parse(bad[i], &ep), -EINVAL, "%s", bad[i]);
}

Test(s3_config, bucket_names_and_keys)
{
	cr_assert(s3_bucket_name_ok("my-bucket.v2"));
	cr_assert(s3_bucket_name_ok("abc"));
	cr_assert_not(s3_bucket_name_ok("ab"));
	cr_assert_not(s3_bucket_name_ok("Upper"));
	cr_assert_not(s3_bucket_name_ok("-lead"));
	cr_assert_not(s3_bucket_name_ok("a..b"));
	cr_assert_not(s3_bucket_name_ok("a/b"));
	cr_assert(s3_key_ok("a/b c+ü"));
	cr_assert_not(s3_key_ok(""));
	cr_assert_not(s3_key_ok("a\nb"));
	{
		char k[S3_KEY_MAX + 2];

		memset(k, 'k', sizeof(k) - 1);
		k[S3_KEY_MAX + 1] = '\0';
		cr_assert_not(s3_key_ok(k));
		k[S3_KEY_MAX] = '\0';
		cr_assert(s3_key_ok(k));
	}
}

static struct s3_client *client_for(const char *endpoint, const char *bucket,
				    enum s3_addressing addressing)
{
	struct s3_config cfg;
	struct s3_client *c = NULL;
	char err[256];

	s3_config_init(&cfg);
	snprintf(cfg.endpoint, sizeof(cfg.endpoint), "%s", endpoint);
	snprintf(cfg.bucket, sizeof(cfg.bucket), "%s", bucket);
	snprintf(cfg.access_key, sizeof(cfg.access_key), "AKID");
	snprintf(cfg.secret_key, sizeof(cfg.secret_key), "secret");
	cfg.addressing = addressing;
	cr_assert_eq(s3_client_create(&c, &cfg, err, sizeof(err)), 0, "%s", err);
	return c;
}

Test(s3_config, addressing_auto_picks_path_style_for_ips_localhost_and_dotted_buckets)
{
	struct s3_client *c;

	c = client_for("http://127.0.0.1:9000", "bkt", S3_ADDRESSING_AUTO);
	cr_assert_str_eq(s3_client_bucket_url(c), "http://127.0.0.1:9000/bkt");
	s3_client_destroy(c);
	c = client_for("http://localhost:9000", "bkt", S3_ADDRESSING_AUTO);
	cr_assert_str_eq(s3_client_bucket_url(c), "http://localhost:9000/bkt");
	s3_client_destroy(c);
	c = client_for("http://[::1]:9000", "bkt", S3_ADDRESSING_AUTO);
	cr_assert_str_eq(s3_client_bucket_url(c), "http://[::1]:9000/bkt");
	s3_client_destroy(c);
	c = client_for("https://s3.eu-west-1.amazonaws.com", "bkt", S3_ADDRESSING_AUTO);
	cr_assert_str_eq(s3_client_bucket_url(c), "https://bkt.s3.eu-west-1.amazonaws.com");
	s3_client_destroy(c);
	c = client_for("https://s3.example.com", "my.bkt", S3_ADDRESSING_AUTO);
	cr_assert_str_eq(s3_client_bucket_url(c), "https://s3.example.com/my.bkt");
	s3_client_destroy(c);
	c = client_for("http://minio.lan:9000", "bkt", S3_ADDRESSING_PATH);
	cr_assert_str_eq(s3_client_bucket_url(c), "http://minio.lan:9000/bkt");
	s3_client_destroy(c);
	c = client_for("http://127.0.0.1:9000", "bkt", S3_ADDRESSING_VIRTUAL);
	cr_assert_str_eq(s3_client_bucket_url(c), "http://bkt.127.0.0.1:9000");
	s3_client_destroy(c);
	c = client_for("", "bkt", S3_ADDRESSING_AUTO);
	cr_assert_str_eq(s3_client_bucket_url(c), "https://bkt.s3.us-east-1.amazonaws.com");
	s3_client_destroy(c);
}

Test(s3_config, client_create_rejects_bad_settings_with_a_reason)
{
	struct s3_config cfg;
	struct s3_client *c = NULL;
	char err[256];

	s3_config_init(&cfg);
	snprintf(cfg.bucket, sizeof(cfg.bucket), "bkt");
	cr_assert_eq(s3_client_create(&c, &cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "credentials"), "%s", err);
	snprintf(cfg.access_key, sizeof(cfg.access_key), "AKID");
	snprintf(cfg.secret_key, sizeof(cfg.secret_key), "secret");
	snprintf(cfg.bucket, sizeof(cfg.bucket), "Bad_Bucket");
	cr_assert_eq(s3_client_create(&c, &cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "bucket"), "%s", err);
	snprintf(cfg.bucket, sizeof(cfg.bucket), "bkt");
	snprintf(cfg.endpoint, sizeof(cfg.endpoint), "s3.example.com");
	cr_assert_eq(s3_client_create(&c, &cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "endpoint"), "%s", err);
	cfg.endpoint[0] = '\0';
	cfg.part_size = 1 << 20;
	cr_assert_eq(s3_client_create(&c, &cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "part size"), "%s", err);
	cfg.part_size = 8 << 20;
	cfg.parallelism = 0;
	cr_assert_eq(s3_client_create(&c, &cfg, err, sizeof(err)), -EINVAL);
}
