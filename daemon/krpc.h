/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_KRPC_H
#define NVX_DAEMON_KRPC_H
/*
 * KRPC: the mainline DHT's messages (BEP 5, BEP 42's "ip", BEP 44's get and
 * put), one bencoded dict per UDP datagram. IPv4 only.
 *
 *   key  type    in         meaning
 *   t    string  all        transaction id (1..NVX_KRPC_TID_MAX bytes), echoed
 *   y    string  all        "q" query, "r" response, "e" error
 *   q    string  query      ping, find_node, get_peers, announce_peer, get, put
 *   a    dict    query      arguments (below)
 *   r    dict    response   return values (below)
 *   e    list    error      [code, message]
 *   ip   string  response   the querier's address as the responder saw it (BEP 42): 6 bytes
 *   ro   int     query      1: the querier is read-only (BEP 43); it is not added to tables
 *
 *   argument / value  type     where
 *   id            20 bytes     every query and response: the sender's node id
 *   target        20 bytes     find_node, get (query)
 *   info_hash     20 bytes     get_peers, announce_peer (query)
 *   port, implied_port int     announce_peer (query)
 *   token         string       announce_peer, put (query); get_peers, get (response)
 *   nodes         26*n bytes   find_node, get_peers, get (response): id, IPv4, port
 *   values        list of 6-byte strings  get_peers (response): IPv4, port
 *   k, sig        32, 64 bytes put (query), get (response): BEP 44 mutable item
 *   salt          0..64 bytes  put (query), optional
 *   seq, cas      int          put (query), get (response: seq)
 *   v             any bencode  put (query), get (response): at most NVX_KRPC_V_MAX bytes
 *
 * nvx_krpc_decode() checks types and sizes of every field it uses and
 * ignores the rest (unknown keys are allowed by BEP 5). Decoded pointers
 * point into the datagram, which must outlive the message.
 *
 * Pure; any thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/bencode.h"

enum nvx_krpc_limits {
    NVX_KRPC_ID_LEN = 20,
    NVX_KRPC_NODE_LEN = 26, /* compact node: id, IPv4 (network order), port (big endian) */
    NVX_KRPC_PEER_LEN = 6,  /* compact peer: IPv4, port */
    NVX_KRPC_TID_MAX = 8,
    NVX_KRPC_TOKEN_MAX = 32,
    NVX_KRPC_NODES_MAX = 16,  /* nodes in one response (we send 8) */
    NVX_KRPC_VALUES_MAX = 64, /* peers in one get_peers response */
    NVX_KRPC_V_MAX = 1000,    /* BEP 44: a stored value's bencoded size */
    NVX_KRPC_SALT_MAX = 64,   /* BEP 44 */
    NVX_KRPC_KEY_LEN = 32,    /* Ed25519 public key */
    NVX_KRPC_SIG_LEN = 64,
    NVX_KRPC_ERRMSG_MAX = 128,
    NVX_KRPC_PACKET_MAX = 1500,
};

/* BEP 5 / BEP 44 error codes. */
enum {
    NVX_KRPC_E_GENERIC = 201,
    NVX_KRPC_E_SERVER = 202,
    NVX_KRPC_E_PROTOCOL = 203,
    NVX_KRPC_E_METHOD = 204,
    NVX_KRPC_E_V_TOO_BIG = 205,
    NVX_KRPC_E_BAD_SIG = 206,
    NVX_KRPC_E_SALT_TOO_BIG = 207,
    NVX_KRPC_E_CAS = 301,
    NVX_KRPC_E_SEQ = 302,
};

typedef enum nvx_krpc_kind {
    NVX_KRPC_QUERY = 1,
    NVX_KRPC_RESPONSE,
    NVX_KRPC_ERROR,
    _NVX_KRPC_KIND_MAX,
} nvx_krpc_kind;

typedef enum nvx_krpc_method {
    NVX_KRPC_NONE = 0, /* a response or error (the method is the transaction's) */
    NVX_KRPC_PING,
    NVX_KRPC_FIND_NODE,
    NVX_KRPC_GET_PEERS,
    NVX_KRPC_ANNOUNCE_PEER,
    NVX_KRPC_GET,
    NVX_KRPC_PUT,
    NVX_KRPC_UNKNOWN, /* a query we do not serve: answered with error 204 */
    _NVX_KRPC_METHOD_MAX,
} nvx_krpc_method;

/* One decoded (or to-be-encoded) message. Fields are present when their
 * has_ flag or length is set. */
typedef struct nvx_krpc_msg {
    uint8_t kind;   /* nvx_krpc_kind */
    uint8_t method; /* nvx_krpc_method (queries) */
    uint8_t tid_len;
    uint8_t tid[NVX_KRPC_TID_MAX];
    bool has_id, has_target, has_ip, has_port, implied_port, read_only;
    uint8_t id[NVX_KRPC_ID_LEN];
    uint8_t target[NVX_KRPC_ID_LEN]; /* target or info_hash, by method */
    uint32_t ip;                     /* "ip" (host order) */
    uint16_t ip_port;
    uint16_t port; /* announce_peer */
    const uint8_t *token;
    size_t token_len;
    const uint8_t *nodes; /* n_nodes compact nodes */
    size_t n_nodes;
    const uint8_t *values[NVX_KRPC_VALUES_MAX]; /* compact peers */
    size_t n_values;
    /* BEP 44 */
    const uint8_t *k, *sig, *salt;
    size_t salt_len;
    bool has_seq, has_cas;
    int64_t seq, cas;
    const uint8_t *v; /* raw bencoded value */
    size_t v_len;
    /* error */
    int64_t err_code;
    const uint8_t *err_msg;
    size_t err_len;
} nvx_krpc_msg;

/* Decodes one datagram. Returns 0, -EBADMSG (not KRPC, a field of the
 * wrong type or size) or -EMSGSIZE. On a query with a bad argument the tid
 * is still filled (m->tid_len > 0) so that the caller can answer 203. */
int nvx_krpc_decode(nvx_krpc_msg *m, const uint8_t *buf, size_t len);

/* Encodes m into buf[0..cap). Returns the length or -EMSGSIZE / -EINVAL. */
int nvx_krpc_encode(const nvx_krpc_msg *m, uint8_t *buf, size_t cap);

/* The method's KRPC name ("ping", ...), NULL for none. */
const char *nvx_krpc_method_name(nvx_krpc_method q);

/* Compact node or peer helpers (IPv4 in host order). */
void nvx_krpc_put_node(uint8_t out[static NVX_KRPC_NODE_LEN], const uint8_t id[static 20],
                       uint32_t ip, uint16_t port);
void nvx_krpc_get_node(const uint8_t in[static NVX_KRPC_NODE_LEN], uint8_t id[static 20],
                       uint32_t *ip, uint16_t *port);
void nvx_krpc_put_peer(uint8_t out[static NVX_KRPC_PEER_LEN], uint32_t ip, uint16_t port);
void nvx_krpc_get_peer(const uint8_t in[static NVX_KRPC_PEER_LEN], uint32_t *ip, uint16_t *port);

/*
 * BEP 44: the bytes a mutable item's signature covers, written to out[0..cap):
 *   [4:salt<len>:<salt>]3:seqi<seq>e1:v<v>
 * (the salt part only with a non-empty salt). Returns the length or -EMSGSIZE.
 */
int nvx_krpc_item_signed(const uint8_t *salt, size_t salt_len, int64_t seq, const uint8_t *v,
                         size_t v_len, uint8_t *out, size_t cap);

#endif
