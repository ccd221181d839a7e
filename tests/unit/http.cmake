# berth_http policy (sdk/http/policy.c, client.c): address classes, the
# spellings block_private_addresses refuses (trailing dot, IPv4-mapped,
# decimal/octal/short IPv4, localhost names), the check before a proxy,
# the check at connect() and kept-alive connections, against a small HTTP
# server inside the test (127.0.0.1, port 0). Reads the library's
# internal.h for the no-network cases.
berth_unit_test(test_http_policy ${BERTH_TEST_SRC}/unit/test_http_policy.c)
target_include_directories(test_http_policy PRIVATE
                           ${CMAKE_SOURCE_DIR}/sdk/http)

# berth_http methods and streaming (sdk/http/client.c, text.c): HEAD,
# PUT/PATCH/DELETE, streamed request bodies (Content-Length and chunked,
# every byte checked by the server), streamed response bodies (sized,
# chunked, ended by a close), aborts and cancel,
# kept response headers, redirects of streamed bodies, the speed caps
# (about 5 s), the stall timeout, base64 and URL escaping, against an
# HTTP/1.1 server inside the test (127.0.0.1, port 0).
berth_unit_test(test_http_stream ${BERTH_TEST_SRC}/unit/test_http_stream.c)
target_include_directories(test_http_stream PRIVATE
                           ${CMAKE_SOURCE_DIR}/sdk/http)
