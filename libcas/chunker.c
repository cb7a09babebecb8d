/* SPDX-License-Identifier: MIT */
/*
 * Gear-hash content-defined chunker (FastCDC family, normalized chunking) with
 * forced cut points and fixed-size regions. The cut rule is documented in
 * chunker.h; this file is its only implementation.
 */
#include "libcas/chunker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/internal.h"

/*
 * The gear table: splitmix64 outputs from the seed 0x6e76782d67656172
 * ("nvx-gear"). Part of the format: see FORMAT.md "Chunking".
 */
static const uint64_t gear[256] = {
    UINT64_C(0xda4ca56ea33c2e96), UINT64_C(0x7133757e5ddd743f), UINT64_C(0xfbdbd74d23cc2299),
    UINT64_C(0x7ce1f2514dc0ea38), UINT64_C(0xe14090d4e5cb39d4), UINT64_C(0x740f4b0479b87210),
    UINT64_C(0xaed259e98753a8df), UINT64_C(0xca13b51ed4ccd617), UINT64_C(0xc1365a0f80e18279),
    UINT64_C(0xd9517f415d8a68ac), UINT64_C(0xe8b6b57c191eb929), UINT64_C(0x8efc8930d33a3899),
    UINT64_C(0xfb4cc00317dd10b7), UINT64_C(0x4151f28c64a4150c), UINT64_C(0x81b069f1be30b434),
    UINT64_C(0x29e6452af4d5279b), UINT64_C(0xc174d299796bd7bb), UINT64_C(0x631f48dd3cba24c3),
    UINT64_C(0xe8ff0742b7b57904), UINT64_C(0x553e390282685596), UINT64_C(0xf3a0f7fa1b2cc8c4),
    UINT64_C(0xe1426d4c13c76f37), UINT64_C(0x12055a4f77443b6c), UINT64_C(0x594a531a5740b21d),
    UINT64_C(0x796abd7dc2b4cfe7), UINT64_C(0xd926ac2a3f343adb), UINT64_C(0xc97b4cc60d49fd58),
    UINT64_C(0xae0266a78fc39af1), UINT64_C(0x8d785e4b2aeba76c), UINT64_C(0xd44a43f100d574ef),
    UINT64_C(0x7aaf3a6a192bec91), UINT64_C(0xd38ff45836938994), UINT64_C(0x3229dc2aa82b51eb),
    UINT64_C(0xfd20f39cbcc46ff2), UINT64_C(0x35ade0e4793d456e), UINT64_C(0x2a4e046f6df6dd63),
    UINT64_C(0x8ef7d3a601532423), UINT64_C(0x15ddbdc79703d373), UINT64_C(0xa69faaa303068fca),
    UINT64_C(0xf4c5b4630b9b032a), UINT64_C(0x3db48ec3968acbbe), UINT64_C(0x40e31cf3cec41b6f),
    UINT64_C(0x721021b8e62cb28a), UINT64_C(0xaa0f98e072103b39), UINT64_C(0xbcd2bbff2c6d80aa),
    UINT64_C(0x64f0d89a4799044b), UINT64_C(0x79453e2dacaa2cc0), UINT64_C(0xbede86f52616efc4),
    UINT64_C(0x62bb5fb6eb1dad57), UINT64_C(0x5c4bcb7613a959d0), UINT64_C(0x514700c177580113),
    UINT64_C(0x26c2b39dd8c8cfad), UINT64_C(0x43c2151c6308b113), UINT64_C(0x50743385ae4c0f31),
    UINT64_C(0x9c7c122247a19d02), UINT64_C(0xe0000ead3611dc7b), UINT64_C(0x37f1721b3cd96e1e),
    UINT64_C(0x91929059f7be658a), UINT64_C(0xddfa721f648fa2ed), UINT64_C(0x1b97bb084ee72bc9),
    UINT64_C(0xa179b1054f184641), UINT64_C(0x6dd1814843cc709f), UINT64_C(0xb3e544925937a5a3),
    UINT64_C(0x1904dc5c48b2a048), UINT64_C(0x375785c6ae798c95), UINT64_C(0xad40af870eed9c6d),
    UINT64_C(0x8d6908dcd8291d11), UINT64_C(0x8c748fedf0c86cd5), UINT64_C(0xb9f698c40d1b99cb),
    UINT64_C(0x9cb7a00d5e644ecb), UINT64_C(0xe7a75a5bec9c32b4), UINT64_C(0x9ac8ef7bc76f814a),
    UINT64_C(0x0d52f424b8ff389e), UINT64_C(0xca417710a8ed375c), UINT64_C(0x034025b299ddbfc9),
    UINT64_C(0xd2c0a488750e60f4), UINT64_C(0x3547a73ecaf595ea), UINT64_C(0x14357f5dbfa68f29),
    UINT64_C(0xb0c59338f617af26), UINT64_C(0xdc055ef494673b95), UINT64_C(0xc1652702c8ee74f0),
    UINT64_C(0x66c876ec4c6ca203), UINT64_C(0x94edfaf3931f33fa), UINT64_C(0x5d43674df62d3e92),
    UINT64_C(0x588a7b44c6c87474), UINT64_C(0xe9561e5de29bab94), UINT64_C(0x1c092d269bbf2b4b),
    UINT64_C(0xfb2de4fc282b70aa), UINT64_C(0xa0f3240647b2fa7a), UINT64_C(0xc05a98ea74839a0e),
    UINT64_C(0xe17e5ed32452a4d2), UINT64_C(0x886bc238b761896d), UINT64_C(0x2cfc12f00cf0a8fe),
    UINT64_C(0x3c81513db52d6f99), UINT64_C(0x2a0ace5d57452b42), UINT64_C(0x73a728b7c2e4d444),
    UINT64_C(0x24f28c654d50dc77), UINT64_C(0xc61201601012d3dd), UINT64_C(0x4167609b25619359),
    UINT64_C(0x3f914e7e86fd2bc0), UINT64_C(0xa719a06662debdf4), UINT64_C(0xd60179f70a3c0172),
    UINT64_C(0x9a9a494edcae2d83), UINT64_C(0x2953660f8f84ca84), UINT64_C(0x6a07cc742c33f110),
    UINT64_C(0x63e43faae9672d0b), UINT64_C(0x1d3f598a2379b57d), UINT64_C(0xbcf2f639fce1e9a1),
    UINT64_C(0xecfa94db6971cc36), UINT64_C(0xeb291895faf165ee), UINT64_C(0xb993273846264c1e),
    UINT64_C(0x24c63f2a4211d722), UINT64_C(0x0a061a4aa7067eef), UINT64_C(0x01bf2594b1f0d5aa),
    UINT64_C(0xcb2d2bbcfb2e8b93), UINT64_C(0xb63744eae70df9bd), UINT64_C(0x014a9d7631014335),
    UINT64_C(0xdb03da0bed9b830e), UINT64_C(0xd0c093d31ade8c8b), UINT64_C(0x69fd500755ef0574),
    UINT64_C(0x71cf0b963b5be8bf), UINT64_C(0x1c013d003761aac7), UINT64_C(0xa8204689b896b093),
    UINT64_C(0xf7360d16eaa907a1), UINT64_C(0xfdeca36e04d475fc), UINT64_C(0x5a206f3be040d990),
    UINT64_C(0x0e7e1f562664e272), UINT64_C(0x57ed962205ae2c65), UINT64_C(0xccf9abba4426119c),
    UINT64_C(0x61cb0d53cd76231d), UINT64_C(0x9997091547a3e67f), UINT64_C(0x0b693165aa5ec3a4),
    UINT64_C(0xedcdd5c3e1df7482), UINT64_C(0xe58419e9d5365bcb), UINT64_C(0x4a3ab2ce562acfdf),
    UINT64_C(0x241644260426fa5c), UINT64_C(0xea1cb445d4927275), UINT64_C(0xa76b35f44bc3944f),
    UINT64_C(0x231becb943059389), UINT64_C(0x94d7bf4b3c1a1160), UINT64_C(0x0916f82a67ccccdc),
    UINT64_C(0x0299e1dfd7064d14), UINT64_C(0x7acc59ddeb728522), UINT64_C(0x4e5a214905461862),
    UINT64_C(0x22ef15d1a9c35ff4), UINT64_C(0xb63344bddcb670ed), UINT64_C(0x8ace55b5c9c54147),
    UINT64_C(0x4071cb4279389b49), UINT64_C(0xf2d04a3491f9b110), UINT64_C(0x007f75b4089a7b8d),
    UINT64_C(0x7c0b6d8f60cbd9b4), UINT64_C(0xbe9b104b1c9f3705), UINT64_C(0x2fb46f77cfe2710b),
    UINT64_C(0xb3031b0418033b26), UINT64_C(0xfc99ef90ac062d1d), UINT64_C(0xd58966211ec8a7ec),
    UINT64_C(0x01bae74da5dcdb3e), UINT64_C(0x6800bf36a6e4f848), UINT64_C(0x652688b8a9789860),
    UINT64_C(0xf29e5c2eba2c6e2c), UINT64_C(0xf89426022d987344), UINT64_C(0x87e2895b7b918d9d),
    UINT64_C(0x2788b3f2c194ceec), UINT64_C(0x04e391576a882d05), UINT64_C(0xce5b9daa66ea06ab),
    UINT64_C(0x8d84038c82bceed2), UINT64_C(0x26935c59a152f55d), UINT64_C(0x55f6402f51a4f200),
    UINT64_C(0x1270f300828fc2b5), UINT64_C(0x45e4ebefa4c57124), UINT64_C(0x936795edeab710fe),
    UINT64_C(0x7db057952b7be56a), UINT64_C(0xb20a28e8d2bb056c), UINT64_C(0xa944f6f79456283a),
    UINT64_C(0x5cb520707ae2fa05), UINT64_C(0x9d6b1756df371b1d), UINT64_C(0x697996776db5895c),
    UINT64_C(0xd5727f63830a1750), UINT64_C(0x2ce9cd9f4706ab12), UINT64_C(0xbe7b696e822fddd0),
    UINT64_C(0x4a46907e752ed644), UINT64_C(0x9c0ad57e63786df9), UINT64_C(0x3863ec779af49019),
    UINT64_C(0xb7cd60f96766171f), UINT64_C(0x55277fcb3b954dec), UINT64_C(0x24a1fa76b9a12eea),
    UINT64_C(0x14e36c407f1f69ba), UINT64_C(0x20dda3cfb47a2a24), UINT64_C(0x9f8bcc513e1c332c),
    UINT64_C(0x0ec324a022ab34cf), UINT64_C(0x9f2535e43f36f340), UINT64_C(0x0e09fabde227e249),
    UINT64_C(0x53e14eadab71a538), UINT64_C(0xb9845488173cee60), UINT64_C(0xe39135adcd60717e),
    UINT64_C(0x56dfc3f20a6de13a), UINT64_C(0x81d91a91dd94fe04), UINT64_C(0x015cb4f673c38a9e),
    UINT64_C(0x86305396539eb0ab), UINT64_C(0x494c891b6149ab6f), UINT64_C(0x6a2fea6668053d40),
    UINT64_C(0x188bddd231c60a15), UINT64_C(0xf4a40d904874cd10), UINT64_C(0xa82e329da8cf6f40),
    UINT64_C(0x997dbc587775a62c), UINT64_C(0x0ec8cce4fd0d4c67), UINT64_C(0xfd18580486d992d7),
    UINT64_C(0x4eddd15f93deef7d), UINT64_C(0xc1f5d722edeebaae), UINT64_C(0x5dc90467c259a806),
    UINT64_C(0x44976343f50dffe5), UINT64_C(0x3add8bd73217456d), UINT64_C(0x9e5055fff2afc427),
    UINT64_C(0x514c929889a0db47), UINT64_C(0x93d629b5ce437d54), UINT64_C(0xd5e25851d433e569),
    UINT64_C(0x77bc1df67a9f8975), UINT64_C(0xe59814123ed7c9c9), UINT64_C(0x55bed153fe3116b9),
    UINT64_C(0x83f62a80328d3a38), UINT64_C(0x9fa877038efc8001), UINT64_C(0x7d1828c15ad7bc62),
    UINT64_C(0xf72fff7fea701e2d), UINT64_C(0x84d6a9aa8417805e), UINT64_C(0x1ef6c8462ac987eb),
    UINT64_C(0x01e31655d66dc6b7), UINT64_C(0xb874f7916b2ce50b), UINT64_C(0x3bdcfb4bb56fd682),
    UINT64_C(0x9dbb866d02b73799), UINT64_C(0x40969c7664911ed0), UINT64_C(0x3e855daf443b9ed3),
    UINT64_C(0xa89e3f44c7923775), UINT64_C(0x6584cb6880578926), UINT64_C(0xc2e61efc6c3aa5e6),
    UINT64_C(0xde705dd14db4066c), UINT64_C(0xd685eac4ae64a3a8), UINT64_C(0x31ecdc850bebdf7c),
    UINT64_C(0xa7fc94e0b42f746c), UINT64_C(0xaced03e5797c94cb), UINT64_C(0xbb15f708f4df5c2f),
    UINT64_C(0x56ffca6cf08c0a9a), UINT64_C(0x777ed0fbbb02c8a6), UINT64_C(0x7da7b2f51b01fad7),
    UINT64_C(0x810528a4ecfd1670), UINT64_C(0xcaaa066ea3e58763), UINT64_C(0xddf25d8f4abe85a2),
    UINT64_C(0x5166de5077ec41c1), UINT64_C(0x4c73b587be83b22f), UINT64_C(0xeb9979aa3127a4f0),
    UINT64_C(0xe7f4ad20b282b732), UINT64_C(0x005aed51b6bdb4f8), UINT64_C(0x725a765fb437f4fc),
    UINT64_C(0x8e43276ad7483ccc), UINT64_C(0x7e3c93d0289f6832), UINT64_C(0x4b31de89b96a1973),
    UINT64_C(0xa3cf52b461d6fceb),
};

const uint64_t *const cas__gear = gear;

/* No cut found in the scanned bytes. */
#define NO_CUT SIZE_MAX

struct cas_chunker {
    cas_chunker_params p;
    uint64_t mask_s; /* before avg: more bits, cuts less likely */
    uint64_t mask_l; /* from avg on: fewer bits, cuts more likely */
    uint64_t h;      /* gear hash of the current chunk since position min */
    uint64_t offset; /* absolute stream offset fed so far */
    uint64_t chunk_start;
    cas_chunk_region *regions;
    size_t n_regions;
    size_t next_region;  /* first region not yet entered */
    uint64_t region_end; /* offset of that region, or UINT64_MAX */
    cas_chunk_mode mode; /* mode of the current region */
};

static const char *const kind_names[_CAS_CHUNKER_KIND_MAX] = {
    [CAS_CHUNKER_CDC] = "cdc",
    [CAS_CHUNKER_GGUF] = "gguf",
    [CAS_CHUNKER_LLAMA2C] = "llama2c",
    [CAS_CHUNKER_FIXED] = "fixed",
};

const char *
cas_chunker_kind_to_string(cas_chunker_kind kind)
{
    if ((unsigned)kind >= _CAS_CHUNKER_KIND_MAX)
        return NULL;
    return kind_names[kind];
}

int
cas_chunker_kind_from_string(const char *s)
{
    for (int k = 0; s && k < _CAS_CHUNKER_KIND_MAX; k++)
        if (strcmp(s, kind_names[k]) == 0)
            return k;
    return -EINVAL;
}

static unsigned
log2_u32(uint32_t v)
{
    unsigned n = 0;

    while (v >>= 1)
        n++;
    return n;
}

int
cas_chunker_params_validate(const cas_chunker_params *p)
{
    if (!p)
        return -EINVAL;
    if (p->min < CAS_CHUNK_SIZE_FLOOR || p->avg < CAS_CHUNK_AVG_FLOOR)
        return -EINVAL;
    if ((p->avg & (p->avg - 1)) != 0)
        return -EINVAL;
    if (!(p->min < p->avg && p->avg < p->max) || p->max > CAS_CHUNK_SIZE_CEIL)
        return -EINVAL;
    return 0;
}

/* A mask of the `bits` most significant bits: those depend on the last 64
 * bytes, where low bits of a gear hash depend on only the last few. */
static uint64_t
top_mask(unsigned bits)
{
    return ~UINT64_C(0) << (64 - bits);
}

int
cas_chunker_new(const cas_chunker_params *p, cas_chunker **ret)
{
    cas_chunker_params params = p ? *p : CAS_CHUNKER_PARAMS_DEFAULT;

    int r = cas_chunker_params_validate(&params);
    if (r < 0)
        return r;
    cas_chunker *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    unsigned bits = log2_u32(params.avg);
    c->p = params;
    c->mask_s = top_mask(bits + CAS_CHUNKER_NORMAL_LEVEL);
    c->mask_l = top_mask(bits - CAS_CHUNKER_NORMAL_LEVEL);
    c->region_end = UINT64_MAX;
    c->mode = CAS_CHUNK_MODE_CDC;
    *ret = c;
    return 0;
}

void
cas_chunker_free(cas_chunker *c)
{
    if (!c)
        return;
    free(c->regions);
    free(c);
}

/* Enters every region that starts at or before the current offset (called at
 * a chunk boundary only). */
static void
enter_regions(cas_chunker *c)
{
    while (c->next_region < c->n_regions && c->regions[c->next_region].offset <= c->offset) {
        c->mode = c->regions[c->next_region].mode;
        c->next_region++;
    }
    c->region_end = c->next_region < c->n_regions ? c->regions[c->next_region].offset : UINT64_MAX;
}

int
cas_chunker_set_regions(cas_chunker *c, const cas_chunk_region *regions, size_t n)
{
    if (!c || (n > 0 && !regions) || c->offset != 0)
        return -EINVAL;
    if (n > CAS_CHUNKER_REGIONS_MAX)
        return -EMSGSIZE;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)regions[i].mode >= _CAS_CHUNK_MODE_MAX)
            return -EINVAL;
        if (i > 0 && regions[i].offset <= regions[i - 1].offset)
            return -EINVAL;
    }
    cas_chunk_region *copy = NULL;
    if (n > 0) {
        copy = malloc(n * sizeof(*copy));
        if (!copy)
            return -ENOMEM;
        memcpy(copy, regions, n * sizeof(*copy));
    }
    free(c->regions);
    c->regions = copy;
    c->n_regions = n;
    c->next_region = 0;
    c->mode = CAS_CHUNK_MODE_CDC;
    enter_regions(c);
    return 0;
}

/* Rolls the gear hash over p[0..n) one byte at a time; returns the length of
 * the prefix that ends at the first position where (h & mask) == 0, or
 * NO_CUT. h = (h << 1) + g compiles to one lea per byte. */
static size_t
gear_scan_serial(const uint8_t *p, size_t n, uint64_t *hp, uint64_t mask)
{
    uint64_t h = *hp;

    for (size_t i = 0; i < n; i++) {
        h = (h << 1) + gear[p[i]];
        if (!(h & mask)) {
            *hp = h;
            return i + 1;
        }
    }
    *hp = h;
    return NO_CUT;
}

/*
 * The hot loop, same contract as gear_scan_serial. A byte's contribution to
 * h is shifted out after 64 more bytes, so the hash at any position is a
 * function of the 64 bytes before it alone. That lets the second half of the
 * range be scanned as an independent stream, started from the hash of the 64
 * bytes before it, interleaved with the first half: two dependency chains
 * keep the core busy where one lea per byte would bound it. The first half's
 * first cut, if any, wins; else the second half's.
 */
static size_t
gear_scan(const uint8_t *p, size_t n, uint64_t *hp, uint64_t mask)
{
    if (n < 1024)
        return gear_scan_serial(p, n, hp, mask);
    size_t half = n / 2;
    const uint8_t *q = p + half;
    uint64_t ha = *hp, hb = 0;
    for (const uint8_t *w = q - 64; w < q; w++)
        hb = (hb << 1) + gear[*w];
    size_t i = 0;
    for (; i < half; i++) {
        ha = (ha << 1) + gear[p[i]];
        hb = (hb << 1) + gear[q[i]];
        if (!(ha & mask)) {
            *hp = ha;
            return i + 1;
        }
        if (!(hb & mask))
            break;
    }
    if (i < half) {
        /* The second half cut at q[i]; only the first half can cut earlier. */
        size_t k = gear_scan_serial(p + i + 1, half - i - 1, &ha, mask);
        if (k != NO_CUT) {
            *hp = ha;
            return i + 1 + k;
        }
        *hp = hb;
        return half + i + 1;
    }
    /* No cut in 2 * half bytes; an odd n leaves one byte of the second half. */
    size_t k = gear_scan_serial(q + half, n - 2 * half, &hb, mask);
    *hp = hb;
    return k == NO_CUT ? NO_CUT : 2 * half + k;
}

/* CDC within the current chunk: returns how many of the n bytes at p belong to
 * it and sets *cut when the chunk ends after them. n never crosses the region
 * end, and the chunk never grows past max. */
static size_t
scan_cdc(cas_chunker *c, const uint8_t *p, size_t n, bool *cut)
{
    uint64_t pos = c->offset - c->chunk_start; /* bytes already in the chunk */
    size_t i = 0;

    if (c->p.max - pos <= n) {
        n = (size_t)(c->p.max - pos);
        *cut = true; /* unless content cuts earlier, the chunk ends at max */
    }
    /* Positions before min are never candidates and are not hashed. */
    if (pos < c->p.min) {
        uint64_t skip = c->p.min - pos;
        if (skip >= n)
            return n;
        i = (size_t)skip;
        pos = c->p.min;
    }
    /* Lengths below avg: the stricter mask. */
    if (pos + 1 < c->p.avg) {
        size_t m = n - i;
        if (m > c->p.avg - 1 - pos)
            m = (size_t)(c->p.avg - 1 - pos);
        size_t k = gear_scan(p + i, m, &c->h, c->mask_s);
        if (k != NO_CUT) {
            *cut = true;
            return i + k;
        }
        i += m;
    }
    if (i < n) {
        size_t k = gear_scan(p + i, n - i, &c->h, c->mask_l);
        if (k != NO_CUT) {
            *cut = true;
            return i + k;
        }
    }
    return n;
}

int
cas_chunker_next(cas_chunker *c, const void *buf, size_t len, size_t *ret_used)
{
    const uint8_t *p = buf;
    size_t n = len;
    bool cut = false;

    if (len == 0) {
        *ret_used = 0;
        return 0;
    }
    /* Never cross the start of the next forced region. */
    uint64_t room = c->region_end - c->offset;
    if (room <= n) {
        n = (size_t)room;
        cut = true;
    }
    if (c->mode == CAS_CHUNK_MODE_FIXED) {
        uint64_t left = c->p.avg - (c->offset - c->chunk_start);
        if (left <= n) {
            n = (size_t)left;
            cut = true;
        }
    } else {
        bool cdc_cut = false;
        size_t used = scan_cdc(c, p, n, &cdc_cut);
        if (used < n)
            cut = false; /* a content cut came first */
        cut = cut || cdc_cut;
        n = used;
    }
    c->offset += n;
    *ret_used = n;
    if (!cut)
        return 0;
    c->chunk_start = c->offset;
    c->h = 0;
    enter_regions(c);
    return 1;
}

bool
cas_chunker_finish(cas_chunker *c, uint64_t *ret_len)
{
    uint64_t pending = c->offset - c->chunk_start;

    c->chunk_start = c->offset;
    c->h = 0;
    if (pending == 0)
        return false;
    *ret_len = pending;
    return true;
}

uint64_t
cas_chunker_offset(const cas_chunker *c)
{
    return c->offset;
}

int
cas_chunker_split(const cas_chunker_params *p, const cas_chunk_region *regions, size_t n_regions,
                  const void *buf, size_t len, uint32_t **ret_lens, size_t *ret_n)
{
    cas_chunker *c = NULL;
    uint32_t *lens = NULL;
    size_t n = 0, cap = 0;
    const uint8_t *q = buf;
    uint64_t start = 0, last;

    int r = cas_chunker_new(p, &c);
    if (r < 0)
        goto out;
    r = cas_chunker_set_regions(c, regions, n_regions);
    if (r < 0)
        goto out;
    for (;;) {
        bool end = len == 0;
        bool have = false;
        if (end) {
            have = cas_chunker_finish(c, &last);
        } else {
            size_t used;
            have = cas_chunker_next(c, q, len, &used) == 1;
            q += used;
            len -= used;
        }
        if (have) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                uint32_t *nl = realloc(lens, ncap * sizeof(*nl));
                if (!nl) {
                    r = -ENOMEM;
                    goto out;
                }
                lens = nl;
                cap = ncap;
            }
            lens[n++] = (uint32_t)(c->offset - start);
            start = c->offset;
        }
        if (end)
            break;
    }
    *ret_lens = lens;
    *ret_n = n;
    lens = NULL;
    r = 0;
out:
    free(lens);
    cas_chunker_free(c);
    return r;
}
