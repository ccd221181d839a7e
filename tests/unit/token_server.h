/* token_server.h - a small Docker registry token service for tests
 * (https://distribution.github.io/distribution/spec/auth/token/): a
 * thread answering GET /token?service=..&scope=.. on a loopback port with
 * an RS256 JWT signed by a fresh RSA key whose self-signed certificate
 * travels in the x5c header and is written as the registry's
 * rootcertbundle. Grants every action asked for to the one user with the
 * right password; anything else gets 401. */
#ifndef BERTH_TEST_TOKEN_SERVER_H
#define BERTH_TEST_TOKEN_SERVER_H

#include <stdbool.h>

struct token_server;

/* Starts it; cert_path receives the PEM certificate. NULL on failure. */
struct token_server *token_server_start(const char *cert_path,
					const char *issuer, const char *service,
					const char *user, const char *password);
/* http://127.0.0.1:<port>/token */
const char *token_server_realm(const struct token_server *t);
/* Tokens issued / requests refused so far. */
int token_server_issued(const struct token_server *t);
int token_server_refused(const struct token_server *t);
void token_server_stop(struct token_server *t);

#endif
