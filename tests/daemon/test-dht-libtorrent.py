#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""nvxd's DHT against a DHT nobody here wrote: Debian's python3-libtorrent.

Two libtorrent sessions and one nvxd on 127.0.0.1, bootstrapping only from
each other (libtorrent's own default router list is emptied: nothing
leaves the machine).
  1. nvxd announces the model it shares; libtorrent's dht_get_peers finds
     nvxd's TCP address under the provider key (proto/PROTOCOL.md, 8).
  2. libtorrent announces a provider for a model (a torrent added by that
     key); `nvx fetch ID` on nvxd looks it up on the DHT and dials the
     address libtorrent announced (the handshake then fails: not an nvx
     node).
  3. libtorrent puts a BEP 44 mutable item (dht_put_mutable_item; the key
     pair made with libsodium through ctypes: the 2.0.8 bindings expose no
     ed25519 helpers and PyNaCl is not needed); `nvx dht get KEY SALT`
     reads it.
  4. `nvx publish ID NAME` puts the name record (libcas/namerec.h, "On the
     BitTorrent DHT"); libtorrent's dht_get_mutable_item(key, NAME) reads
     it, with the record's sequence.
Skips (77) where python3-libtorrent is absent; contrib/nvx-dev installs it.
"""
import base64
import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import libtorrent as lt
except ImportError:
    print("SKIP: python3-libtorrent is not installed (contrib/nvx-dev test installs it)")
    sys.exit(77)

BUILD = os.environ["NVX_BUILD_ROOT"]
NVX = os.path.join(BUILD, "cli", "nvx")
NVXD = os.path.join(BUILD, "daemon", "nvxd")
WAIT_S = 60  # a bound for polls, not a timing assertion


def provider_key(model_hex):
    h = hashlib.blake2b(b"nvx-provider-v1" + bytes.fromhex(model_hex), digest_size=32)
    return h.digest()[:20]


def lt_session():
    s = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",  # no public routers
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "alert_mask": (lt.alert.category_t.dht_notification | lt.alert.category_t.dht_operation_notification
                       | lt.alert.category_t.error_notification),
    })
    return s


def ed25519_keypair():
    """(public key, libtorrent's 64-byte secret) from libsodium's seed key
    pair: libtorrent (orlp ed25519) keeps SHA-512(seed), clamped."""
    so = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    assert so.sodium_init() >= 0
    seed = os.urandom(32)
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
    assert so.crypto_sign_seed_keypair(pk, sk, seed) == 0
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return pk.raw, bytes(h)


def lt_item(sess, pk, salt):
    """The value libtorrent gets for (pk, salt) and its seq, or None."""
    sess.dht_get_mutable_item(pk, salt)  # bytes: a str would go as UTF-8
    end = time.monotonic() + 2
    while time.monotonic() < end:
        sess.wait_for_alert(100)
        for al in sess.pop_alerts():
            if isinstance(al, lt.dht_mutable_item_alert) and al.salt == salt and al.seq > 0:
                return al.item, al.seq
    return None


def nvx(store, *args):
    return subprocess.run([NVX, "--store", store] + list(args), capture_output=True, text=True)


def poll(what, fn):
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit("FAIL: " + what)


def main():
    tmp = tempfile.mkdtemp(prefix="nvx-dht-lt.")
    procs = []
    try:
        a, b = lt_session(), lt_session()
        pa, pb = a.listen_port(), b.listen_port()
        a.add_dht_node(("127.0.0.1", pb))
        b.add_dht_node(("127.0.0.1", pa))

        store = os.path.join(tmp, "n")
        model = os.path.join(tmp, "model.bin")
        with open(model, "wb") as f:
            f.write(os.urandom(256 * 1024))
        r = nvx(store, "-q", "add", "--pin", model)
        assert r.returncode == 0, r.stderr
        model_id = r.stdout.strip().split()[-1]
        log = open(os.path.join(tmp, "nvxd.log"), "w")
        procs.append(subprocess.Popen(
            [NVXD, "--store", store, "--listen", "127.0.0.1:0", "--no-discovery", "--http", "off",
             "--log-level", "debug", "--dht-bootstrap", "127.0.0.1:%d,127.0.0.1:%d" % (pa, pb)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log))

        def dht_status():
            r = nvx(store, "--json", "dht")
            return json.loads(r.stdout) if r.returncode == 0 else None
        st = poll("nvxd did not start", dht_status)
        poll("nvxd's DHT heard no libtorrent node", lambda: dht_status()["nodes"] >= 2)
        r = nvx(store, "--json", "status")
        tcp_port = int(json.loads(r.stdout)["addresses"][0].rsplit(":", 1)[1])
        print("nvxd: DHT udp %d, TCP %d; libtorrent DHT on %d and %d" % (st["port"], tcp_port, pa, pb))

        # 1. nvxd announces; libtorrent finds it.
        key = lt.sha1_hash(provider_key(model_id))

        def lt_found():
            b.dht_get_peers(key)
            end = time.monotonic() + 2
            while time.monotonic() < end:
                b.wait_for_alert(100)
                for al in b.pop_alerts():
                    if isinstance(al, lt.dht_get_peers_reply_alert):
                        if ("127.0.0.1", tcp_port) in [tuple(p) for p in al.peers()]:
                            return True
            return False
        poll("libtorrent's dht_get_peers did not find nvxd's announce", lt_found)
        print("ok: libtorrent found nvxd's provider announce")

        # 2. libtorrent announces; nvx fetch finds and dials it.
        other = os.urandom(32).hex()
        # (session.dht_announce's flags type is not exposed by the 2.0.8
        # bindings: a torrent added by info-hash is announced on the DHT
        # with libtorrent's listen port.)
        atp = lt.add_torrent_params()
        atp.info_hashes = lt.info_hash_t(lt.sha1_hash(provider_key(other)))
        atp.save_path = tmp
        atp.flags = lt.torrent_flags.upload_mode
        a.add_torrent(atp)
        fetch = subprocess.Popen([NVX, "--store", store, "-q", "fetch", other, "--timeout", "30"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(fetch)
        want = "dht: provider 127.0.0.1:%d" % pa

        def nvx_found():
            with open(os.path.join(tmp, "nvxd.log")) as f:
                if want in f.read():
                    return True
            # libtorrent's announce may land after nvx's first lookup: ask again.
            if fetch.poll() is not None:
                procs.append(subprocess.Popen(
                    [NVX, "--store", store, "-q", "fetch", other, "--timeout", "30"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            return False
        poll("nvx did not find libtorrent's announce", nvx_found)
        print("ok: nvx fetch found libtorrent's provider announce and dialed it")

        # 3. libtorrent puts a mutable item; nvx reads it.
        pk, lt_sk = ed25519_keypair()
        a.dht_put_mutable_item(lt_sk, pk, "hello from libtorrent", "lt-salt")

        def nvx_item():
            r = nvx(store, "--json", "dht", "get", pk.hex(), "lt-salt")
            return json.loads(r.stdout) if r.returncode == 0 else None
        it = poll("nvx dht get did not read libtorrent's item", nvx_item)
        assert bytes.fromhex(it["value"]) == lt.bencode("hello from libtorrent"), it
        print("ok: nvx read libtorrent's BEP 44 item (seq %d)" % it["seq"])

        # 4. nvx publish puts the name record; libtorrent reads it.
        key = os.path.join(tmp, "pub.key")
        r = nvx(store, "key", "new", "--unencrypted", "--key", key)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(tmp, "pub.pub")) as f:
            nvx_pk = base64.b64decode(f.read().split("\n")[1])[10:42]
        r = nvx(store, "--json", "publish", model_id, "lt-interop", "--key", key)
        assert r.returncode == 0, r.stderr
        seq = json.loads(r.stdout)["sequence"]
        got = poll("libtorrent's dht_get_mutable_item did not read nvx's name",
                   lambda: lt_item(b, nvx_pk, "lt-interop"))
        value = got[0]["value"]  # the 2.0.8 bindings give {"key": k, "value": v}
        assert got[1] == seq and value.startswith(b"nvxname\x01") and b"lt-interop" in value, got
        print("ok: libtorrent read nvx's name record as a BEP 44 item (seq %d)" % seq)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
