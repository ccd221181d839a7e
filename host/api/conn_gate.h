/* conn_gate.h - a cap on the REST API's open connections per client IP
 * address (berth.api_max_client_connections), enforced when civetweb
 * accepts: a connection past it is answered 503 (code 10018) and closed
 * before it can hold a worker thread. */
#ifndef BERTH_API_CONN_GATE_H
#define BERTH_API_CONN_GATE_H

/* Polices connections accepted on local TCP port 'port' from now on; cap
 * 0 only tracks them. */
void conn_gate_start(int port, int cap);
/* Stops policing and forgets the tracked connections. */
void conn_gate_stop(void);

#endif
