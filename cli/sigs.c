/* SPDX-License-Identifier: MIT */
#include "cli/sigs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/escape.h"
#include "libcas/store.h"

const char *
cli_sig_status_name(cli_sig_status s)
{
    static const char *const names[] = { "trusted", "untrusted", "invalid", "malformed" };
    return (unsigned)s < _CLI_SIG_STATUS_MAX ? names[s] : "?";
}

typedef struct sig_acc {
    cas_store *s;
    const uint8_t *manifest;
    size_t len;
    cli_sig_result *res;
    size_t n, cap;
    bool kept_apart; /* listing the blobs of unknown keys */
} sig_acc;

static void
check_one(sig_acc *a, const uint8_t *blob, size_t len, cli_sig_result *out)
{
    memset(out, 0, sizeof(*out));
    if (cas_sig_parse(blob, len, &out->info) < 0) {
        out->status = CLI_SIG_MALFORMED;
        return;
    }
    cas_keyid_format(out->info.keyid, out->keyid);
    uint8_t *kblob = NULL;
    size_t klen = 0;
    char *kname = NULL;
    if (cas_store_key_get(a->s, out->info.keyid, CAS_KEYID_LEN, &kblob, &klen, &kname) < 0) {
        out->status = CLI_SIG_UNTRUSTED;
        return;
    }
    if (kname)
        snprintf(out->key_name, sizeof(out->key_name), "%s", kname);
    cas_pubkey pk;
    cas_sig_info info;
    if (cas_pubkey_decode(kblob, klen, &pk) == 0 &&
        cas_sig_verify(&pk, blob, len, a->manifest, a->len, &info) == 0) {
        out->status = CLI_SIG_TRUSTED;
        out->info = info;
    } else {
        out->status = CLI_SIG_INVALID;
    }
    free(kblob);
    free(kname);
}

static int
on_blob(void *userdata, const void *blob, size_t len)
{
    sig_acc *a = userdata;
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 4;
        cli_sig_result *nr = realloc(a->res, cap * sizeof(*nr));
        if (!nr)
            return -ENOMEM;
        a->res = nr;
        a->cap = cap;
    }
    check_one(a, blob, len, &a->res[a->n]);
    a->res[a->n++].kept_apart = a->kept_apart;
    return 0;
}

int
cli_sigs_check(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const uint8_t *manifest,
               size_t len, cli_sig_result **ret, size_t *ret_n)
{
    sig_acc a = { .s = s, .manifest = manifest, .len = len };
    int r = cas_store_sig_list(s, id, on_blob, &a);
    if (r == 0) {
        /* Blobs of keys the keyring lacks are kept apart (sig-store.c);
         * they are shown, as untrusted, so that the user sees what to
         * trust. */
        a.kept_apart = true;
        r = cas_store_sig_list_pending(s, id, on_blob, &a);
    }
    if (r < 0) {
        free(a.res);
        return r;
    }
    *ret = a.res;
    *ret_n = a.n;
    return 0;
}

void
cli_sig_print(FILE *f, const cli_sig_result *r)
{
    fprintf(f, "%s (", r->keyid[0] ? r->keyid : "?");
    if (r->key_name[0]) {
        cli_print_escaped_str(f, r->key_name);
        fputs(", ", f);
    }
    fprintf(f, "%s%s)", cli_sig_status_name(r->status),
            r->kept_apart ? ", kept apart until its key is trusted" : "");
}

void
cli_sigs_json(cli_json *j, const cli_sig_result *r, size_t n)
{
    cli_json_arr_begin(j);
    for (size_t i = 0; i < n; i++) {
        cli_json_obj_begin(j);
        cli_json_kv_str(j, "status", cli_sig_status_name(r[i].status));
        cli_json_kv_str(j, "key_id", r[i].keyid);
        cli_json_kv_str(j, "key_name", r[i].key_name);
        cli_json_kv_bool(j, "kept_apart", r[i].kept_apart);
        if (r[i].status == CLI_SIG_TRUSTED) {
            cli_json_kv_str(j, "trusted_comment", r[i].info.trusted_comment);
            if (r[i].info.has_timestamp) {
                cli_json_kv_u64(j, "timestamp", r[i].info.timestamp);
            }
            if (r[i].info.has_name) {
                cli_json_kv_str(j, "name", r[i].info.name);
            }
        }
        cli_json_obj_end(j);
    }
    cli_json_arr_end(j);
}
