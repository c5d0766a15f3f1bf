/*
 * api_cpu_config.c - parsing custom CPU templates (api_cpu_config.h).
 * The format is Firecracker's CustomCpuTemplate for x86_64
 * (docs/cpu_templates/cpu-templates.md in its repository); the checks
 * are flint's, and stricter where the format allows nonsense.
 */
#define _GNU_SOURCE
#include "api_cpu_config.h"
#include "util.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CPU_CONFIG_FILE_MAX (1024 * 1024)

/* "0x1f" or "0b101": Firecracker's two number forms. At most 64 bits of
 * value (`bits`), no sign, no separators, at least one digit. */
static int parse_number(const json_t *v, unsigned bits, uint64_t *out)
{
    const char *s = json_string_value(v);
    unsigned base, shift;
    uint64_t n = 0, limit = bits == 64 ? ~0ull : (1ull << bits) - 1;

    if (!s || s[0] != '0' || (s[1] != 'x' && s[1] != 'b') || !s[2])
        return -EINVAL;
    base = s[1] == 'x' ? 16 : 2;
    shift = base == 16 ? 4 : 1;
    for (s += 2; *s; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = *s - 'A' + 10;
        else
            return -EINVAL;
        if (d >= (int)base || n > (limit >> shift))
            return -EINVAL;
        n = (n << shift) | (uint64_t)d;
    }
    *out = n;
    return 0;
}

/* A tri-state bitmap: optional "0b", then 1 to `bits` of 0/1/x ('_'
 * between them ignored), the last one bit 0. */
static int parse_bitmap(const json_t *v, unsigned bits, uint64_t *mask, uint64_t *value)
{
    const char *s = json_string_value(v);
    unsigned n = 0;
    size_t len;

    if (!s)
        return -EINVAL;
    if (!strncmp(s, "0b", 2))
        s += 2;
    *mask = *value = 0;
    len = strlen(s);
    for (size_t i = len; i-- > 0;) {
        char c = s[i];
        if (c == '_')
            continue;
        if ((c != '0' && c != '1' && c != 'x') || n == bits)
            return -EINVAL;
        if (c != 'x')
            *mask |= 1ull << n;
        if (c == '1')
            *value |= 1ull << n;
        n++;
    }
    return n ? 0 : -EINVAL;
}

/* Only `keys` (all required when `required`), each once (jansson refuses
 * duplicate keys when loading with JSON_REJECT_DUPLICATES). */
static int check_keys(json_t *obj, const char *const *keys, size_t nkeys, bool required,
                      const char *where, char *err, size_t errlen)
{
    const char *key;
    json_t *v;

    if (!json_is_object(obj))
        return fail_einval(err, errlen, "%s: must be an object", where);
    json_object_foreach(obj, key, v)
    {
        size_t i = 0;
        while (i < nkeys && strcmp(key, keys[i]))
            i++;
        if (i == nkeys)
            return fail_einval(err, errlen, "%s: unknown field '%s'", where, key);
    }
    for (size_t i = 0; required && i < nkeys; i++)
        if (!json_object_get(obj, keys[i]))
            return fail_einval(err, errlen, "%s: missing field '%s'", where, keys[i]);
    return 0;
}

static int parse_register(const char *name)
{
    static const char *const regs[] = {"eax", "ebx", "ecx", "edx"};

    for (int i = 0; i < CPUID_NREGS; i++)
        if (name && !strcmp(name, regs[i]))
            return i;
    return -EINVAL;
}

static int parse_reg_mods(json_t *arr, struct cpuid_leaf_mod *m, const char *where, char *err,
                          size_t errlen)
{
    static const char *const keys[] = {"register", "bitmap"};
    unsigned seen = 0; /* one bit per register */
    char at[96];
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return fail_einval(err, errlen, "%s.modifiers: must be an array", where);
    json_array_foreach(arr, i, v)
    {
        uint64_t mask, value;
        int r;

        snprintf(at, sizeof(at), "%s.modifiers[%zu]", where, i);
        if (check_keys(v, keys, 2, true, at, err, errlen))
            return -EINVAL;
        r = parse_register(json_string_value(json_object_get(v, "register")));
        if (r < 0)
            return fail_einval(err, errlen, "%s.register: must be one of eax, ebx, ecx, edx", at);
        if (seen & (1u << r))
            return fail_einval(err, errlen, "%s.register: %s appears twice in this leaf", at,
                               json_string_value(json_object_get(v, "register")));
        if (parse_bitmap(json_object_get(v, "bitmap"), 32, &mask, &value))
            return fail_einval(err, errlen,
                               "%s.bitmap: must be \"0b\" and 1 to 32 characters of 0, 1 or x", at);
        seen |= 1u << r;
        m->regs[r] = (struct cpu_bits32){(uint32_t)mask, (uint32_t)value};
    }
    return 0;
}

static int parse_leaf(json_t *v, struct cpuid_leaf_mod *m, const char *where, char *err,
                      size_t errlen)
{
    static const char *const keys[] = {"leaf", "subleaf", "flags", "modifiers"};
    json_t *flags;
    uint64_t n;

    if (check_keys(v, keys, 4, true, where, err, errlen))
        return -EINVAL;
    memset(m, 0, sizeof(*m));
    if (parse_number(json_object_get(v, "leaf"), 32, &n))
        return fail_einval(err, errlen, "%s.leaf: must be a 32-bit number string such as \"0x1\"",
                           where);
    m->leaf = (uint32_t)n;
    if (parse_number(json_object_get(v, "subleaf"), 32, &n))
        return fail_einval(err, errlen,
                           "%s.subleaf: must be a 32-bit number string such as \"0x0\"", where);
    m->subleaf = (uint32_t)n;
    flags = json_object_get(v, "flags");
    if (!json_is_integer(flags) ||
        (json_integer_value(flags) != 0 && json_integer_value(flags) != 1))
        return fail_einval(err, errlen,
                           "%s.flags: must be 0 or 1 (KVM_CPUID_FLAG_SIGNIFCANT_INDEX)", where);
    m->flags = (uint32_t)json_integer_value(flags);
    return parse_reg_mods(json_object_get(v, "modifiers"), m, where, err, errlen);
}

static int parse_cpuid_mods(json_t *arr, struct cpu_template *t, char *err, size_t errlen)
{
    struct cpuid_leaf_mod *leaves;
    char where[48];
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return fail_einval(err, errlen, "cpuid_modifiers: must be an array");
    if (json_array_size(arr) > CPU_TEMPLATE_MAX_LEAVES)
        return fail_einval(err, errlen, "cpuid_modifiers: at most %d leaves",
                           CPU_TEMPLATE_MAX_LEAVES);
    leaves = calloc(json_array_size(arr) + 1, sizeof(*leaves));
    if (!leaves)
        return fail_einval(err, errlen, "cpuid_modifiers: out of memory");
    t->leaves = leaves;
    json_array_foreach(arr, i, v)
    {
        snprintf(where, sizeof(where), "cpuid_modifiers[%zu]", i);
        if (parse_leaf(v, &leaves[i], where, err, errlen))
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (leaves[j].leaf == leaves[i].leaf && leaves[j].subleaf == leaves[i].subleaf)
                return fail_einval(err, errlen,
                                   "%s: leaf 0x%x subleaf 0x%x already appears at [%zu]", where,
                                   leaves[i].leaf, leaves[i].subleaf, j);
        t->nleaves++;
    }
    return 0;
}

/* MSRs exist in 0-0x1fff and 0xc0000000-0xc0001fff (the ranges the VMX
 * and SVM MSR bitmaps cover) and KVM's own 0x4b564d00-0x4b564dff; the
 * x2APIC registers 0x800-0x8ff are the local APIC's, set through
 * KVM_SET_LAPIC, not as MSRs. */
static bool msr_settable(uint32_t addr)
{
    if (addr >= 0x800 && addr <= 0x8ff)
        return false;
    return addr <= 0x1fff || (addr >= 0xc0000000u && addr <= 0xc0001fffu) ||
           (addr >= 0x4b564d00u && addr <= 0x4b564dffu);
}

static int parse_msr_mods(json_t *arr, struct cpu_template *t, char *err, size_t errlen)
{
    static const char *const keys[] = {"addr", "bitmap"};
    struct msr_mod *msrs;
    char where[48];
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return fail_einval(err, errlen, "msr_modifiers: must be an array");
    if (json_array_size(arr) > CPU_TEMPLATE_MAX_MSRS)
        return fail_einval(err, errlen, "msr_modifiers: at most %d MSRs", CPU_TEMPLATE_MAX_MSRS);
    msrs = calloc(json_array_size(arr) + 1, sizeof(*msrs));
    if (!msrs)
        return fail_einval(err, errlen, "msr_modifiers: out of memory");
    t->msrs = msrs;
    json_array_foreach(arr, i, v)
    {
        uint64_t addr;

        snprintf(where, sizeof(where), "msr_modifiers[%zu]", i);
        if (check_keys(v, keys, 2, true, where, err, errlen))
            return -EINVAL;
        if (parse_number(json_object_get(v, "addr"), 32, &addr))
            return fail_einval(err, errlen,
                               "%s.addr: must be a 32-bit number string such as \"0x10a\"", where);
        if (!msr_settable((uint32_t)addr))
            return fail_einval(err, errlen, "%s.addr: 0x%x is not an MSR flint can set", where,
                               (uint32_t)addr);
        for (size_t j = 0; j < i; j++)
            if (msrs[j].addr == addr)
                return fail_einval(err, errlen, "%s.addr: MSR 0x%x already appears at [%zu]", where,
                                   (uint32_t)addr, j);
        msrs[i].addr = (uint32_t)addr;
        if (parse_bitmap(json_object_get(v, "bitmap"), 64, &msrs[i].mask, &msrs[i].value))
            return fail_einval(err, errlen,
                               "%s.bitmap: must be \"0b\" and 1 to 64 characters of 0, 1 or x",
                               where);
        t->nmsrs++;
    }
    return 0;
}

/* "171" or "!171": a decimal capability number, at most 10 digits. */
static int parse_cap(const char *s, struct kvm_cap_mod *c)
{
    uint64_t n = 0;
    size_t digits = 0;

    if (!s)
        return -EINVAL;
    c->remove = *s == '!';
    for (s += c->remove; *s; s++, digits++) {
        if (*s < '0' || *s > '9' || digits == 10)
            return -EINVAL;
        n = n * 10 + (uint64_t)(*s - '0');
    }
    if (!digits || n > 0xffffffffull)
        return -EINVAL;
    c->cap = (uint32_t)n;
    return 0;
}

static int parse_caps(json_t *arr, struct cpu_template *t, char *err, size_t errlen)
{
    struct kvm_cap_mod *caps;
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return fail_einval(err, errlen, "kvm_capabilities: must be an array");
    if (json_array_size(arr) > CPU_TEMPLATE_MAX_CAPS)
        return fail_einval(err, errlen, "kvm_capabilities: at most %d entries",
                           CPU_TEMPLATE_MAX_CAPS);
    caps = calloc(json_array_size(arr) + 1, sizeof(*caps));
    if (!caps)
        return fail_einval(err, errlen, "kvm_capabilities: out of memory");
    t->caps = caps;
    json_array_foreach(arr, i, v)
    {
        if (parse_cap(json_string_value(v), &caps[i]))
            return fail_einval(
                err, errlen,
                "kvm_capabilities[%zu]: must be a string \"N\" or \"!N\", N a decimal "
                "capability number",
                i);
        for (size_t j = 0; j < i; j++)
            if (caps[j].cap == caps[i].cap)
                return fail_einval(err, errlen,
                                   "kvm_capabilities[%zu]: capability %u already appears", i,
                                   caps[i].cap);
        t->ncaps++;
    }
    return 0;
}

static int parse_template(json_t *root, struct cpu_template *t, char *err, size_t errlen)
{
    static const char *const keys[] = {"kvm_capabilities", "cpuid_modifiers", "msr_modifiers"};
    json_t *v;

    if (json_is_object(root) &&
        (json_object_get(root, "reg_modifiers") || json_object_get(root, "vcpu_features")))
        return fail_einval(
            err, errlen,
            "reg_modifiers and vcpu_features are for aarch64 hosts; this one is x86_64");
    if (check_keys(root, keys, 3, false, "cpu-config", err, errlen))
        return -EINVAL;
    if ((v = json_object_get(root, "kvm_capabilities")) && parse_caps(v, t, err, errlen))
        return -EINVAL;
    if ((v = json_object_get(root, "cpuid_modifiers")) && parse_cpuid_mods(v, t, err, errlen))
        return -EINVAL;
    if ((v = json_object_get(root, "msr_modifiers")) && parse_msr_mods(v, t, err, errlen))
        return -EINVAL;
    return 0;
}

int cpu_config_from_json(json_t *root, struct cpu_template **out, char *err, size_t errlen)
{
    struct cpu_template *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (!t) {
        snprintf(err, errlen, "cpu-config: out of memory");
        return -ENOMEM;
    }
    if (parse_template(root, t, err, errlen)) {
        cpu_template_free(t);
        return -EINVAL;
    }
    *out = t;
    return 0;
}

int cpu_config_parse(const char *json, size_t len, struct cpu_template **out, char *err,
                     size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;

    *out = NULL;
    if (!root)
        return fail_einval(err, errlen, "cpu-config: malformed JSON: %s (line %d, column %d)",
                           jerr.text, jerr.line, jerr.column);
    rc = cpu_config_from_json(root, out, err, errlen);
    json_decref(root);
    return rc;
}

int api_put_cpu_config(struct vm_config *cfg, json_t *body, char *err, size_t errlen)
{
    struct cpu_template *t;
    int rc = cpu_config_from_json(body, &t, err, errlen);

    if (rc)
        return rc;
    cpu_template_free(cfg->custom_cpu);
    cfg->custom_cpu = t;
    cfg->cpu_template = CPU_TEMPLATE_CUSTOM;
    return 0;
}

/* The whole of a regular file of at most CPU_CONFIG_FILE_MAX bytes. */
static char *read_small_file(const char *path, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t have = 0;
    /* O_NONBLOCK: a FIFO at the path must not hold flint up in open(). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0)
        return NULL;
    if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size <= CPU_CONFIG_FILE_MAX)
        buf = malloc((size_t)st.st_size + 1);
    while (buf && have < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + have, (size_t)st.st_size - have);
        if (k <= 0)
            break;
        have += (size_t)k;
    }
    close(fd);
    if (buf && have != (size_t)st.st_size) {
        free(buf);
        buf = NULL;
    }
    *len = have;
    return buf;
}

int api_load_cpu_config_file(struct vm_config *cfg, const char *path, char *err, size_t errlen)
{
    struct cpu_template *t;
    size_t len;
    char *buf = read_small_file(path, &len);
    int rc;

    if (!buf)
        return fail_einval(err, errlen,
                           "cpu-config: %s: cannot read it (a regular file of at most %d bytes)",
                           path, CPU_CONFIG_FILE_MAX);
    rc = cpu_config_parse(buf, len, &t, err, errlen);
    free(buf);
    if (rc)
        return rc;
    cpu_template_free(cfg->custom_cpu);
    cfg->custom_cpu = t;
    cfg->cpu_template = CPU_TEMPLATE_CUSTOM;
    return 0;
}
