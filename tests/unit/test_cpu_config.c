/* Unit tests: custom CPU templates in Firecracker's JSON format
 * (api_cpu_config.h), hostile input first, and PUT /cpu-config with
 * machine-config cpu_template through the API. */
#include <criterion/criterion.h>

#include "api.h"
#include "api_cpu_config.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ONES32 "11111111111111111111111111111111"
#define X32    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static struct cpu_template *parse_ok(const char *json)
{
    struct cpu_template *t = NULL;
    char err[256] = "";

    cr_assert_eq(cpu_config_parse(json, strlen(json), &t, err, sizeof(err)), 0, "%s: %s", json,
                 err);
    cr_assert_not_null(t);
    return t;
}

static void parse_fails(const char *json, const char *needle)
{
    struct cpu_template *t = (void *)1;
    char err[256] = "";

    cr_assert_eq(cpu_config_parse(json, strlen(json), &t, err, sizeof(err)), -EINVAL, "%s", json);
    cr_assert_null(t);
    cr_assert(strstr(err, needle), "%s: '%s' lacks '%s'", json, err, needle);
}

Test(cpu_config, firecracker_example_parses)
{
    struct cpu_template *t =
        parse_ok("{\"kvm_capabilities\": [\"171\", \"!172\"],"
                 " \"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0,"
                 "   \"modifiers\": [{\"register\": \"eax\", \"bitmap\": "
                 "\"0bxxxx000000000011xx00011011110010\"},"
                 "                   {\"register\": \"ecx\", \"bitmap\": \"0b" X32 "\"}]},"
                 "  {\"leaf\": \"0x7\", \"subleaf\": \"0b1\", \"flags\": 1,"
                 "   \"modifiers\": [{\"register\": \"edx\", \"bitmap\": \"0b1x0_1\"}]}],"
                 " \"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": "
                 "\"0b0000000000000000000000000000000000000000000000000000110001001100\"}]}");

    cr_assert_eq(t->ncaps, 2);
    cr_assert_eq(t->caps[0].cap, 171);
    cr_assert_not(t->caps[0].remove);
    cr_assert_eq(t->caps[1].cap, 172);
    cr_assert(t->caps[1].remove);
    cr_assert_eq(t->nleaves, 2);
    cr_assert_eq(t->leaves[0].leaf, 1);
    cr_assert_eq(t->leaves[0].regs[CPUID_EAX].mask, 0x0fff3fffu);
    cr_assert_eq(t->leaves[0].regs[CPUID_EAX].value, 0x000306f2u);
    cr_assert_eq(t->leaves[0].regs[CPUID_ECX].mask, 0, "all x: left alone");
    cr_assert_eq(t->leaves[0].regs[CPUID_EBX].mask, 0, "not named: left alone");
    cr_assert_eq(t->leaves[1].leaf, 7);
    cr_assert_eq(t->leaves[1].subleaf, 1);
    cr_assert_eq(t->leaves[1].flags, 1);
    /* "1x0_1": bit 0 = 1, bit 1 = 0, bit 2 = x, bit 3 = 1. */
    cr_assert_eq(t->leaves[1].regs[CPUID_EDX].mask, 0xbu);
    cr_assert_eq(t->leaves[1].regs[CPUID_EDX].value, 0x9u);
    cr_assert_eq(t->nmsrs, 1);
    cr_assert_eq(t->msrs[0].addr, 0x10a);
    cr_assert_eq(t->msrs[0].mask, ~0ull);
    cr_assert_eq(t->msrs[0].value, 0xc4cull);
    cpu_template_free(t);
}

Test(cpu_config, empty_and_full_width)
{
    struct cpu_template *t = parse_ok("{}");
    cr_assert_eq(t->nleaves + t->nmsrs + t->ncaps, 0);
    cpu_template_free(t);
    t = parse_ok("{\"cpuid_modifiers\": [], \"msr_modifiers\": [], \"kvm_capabilities\": []}");
    cpu_template_free(t);
    t = parse_ok("{\"cpuid_modifiers\": [{\"leaf\": \"0xffffffff\", \"subleaf\": \"0xFFFFFFFF\","
                 " \"flags\": 1, \"modifiers\": [{\"register\": \"ebx\", \"bitmap\": \"" ONES32
                 "\"}]}]}");
    cr_assert_eq(t->leaves[0].leaf, 0xffffffffu);
    cr_assert_eq(t->leaves[0].regs[CPUID_EBX].mask, ~0u);
    cr_assert_eq(t->leaves[0].regs[CPUID_EBX].value, ~0u);
    cpu_template_free(t);
    cpu_template_free(NULL);
}

#define LEAF(body) "{\"cpuid_modifiers\": [" body "]}"
#define MOD(reg, bm)                                                                               \
    "{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": [{\"register\": "      \
    "\"" reg "\", \"bitmap\": \"" bm "\"}]}"
#define MSR(addr, bm) "{\"msr_modifiers\": [{\"addr\": \"" addr "\", \"bitmap\": \"" bm "\"}]}"

Test(cpu_config, hostile_json)
{
    parse_fails("", "malformed JSON");
    parse_fails("{", "malformed JSON");
    parse_fails("[]", "cpu-config: must be an object");
    parse_fails("null", "malformed JSON");
    parse_fails("{\"cpuid_modifiers\": [], \"cpuid_modifiers\": []}", "malformed JSON");
    parse_fails("{\"bogus\": 1}", "unknown field 'bogus'");
    parse_fails("{\"reg_modifiers\": []}", "aarch64");
    parse_fails("{\"vcpu_features\": []}", "aarch64");
    parse_fails("{\"cpuid_modifiers\": {}}", "cpuid_modifiers: must be an array");
    parse_fails("{\"cpuid_modifiers\": null}", "cpuid_modifiers: must be an array");
    parse_fails("{\"msr_modifiers\": \"x\"}", "msr_modifiers: must be an array");
    parse_fails("{\"kvm_capabilities\": 5}", "kvm_capabilities: must be an array");
    parse_fails(LEAF("1"), "cpuid_modifiers[0]: must be an object");
}

Test(cpu_config, hostile_leaves)
{
    parse_fails(LEAF("{}"), "cpuid_modifiers[0]: missing field 'leaf'");
    parse_fails(LEAF("{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0}"),
                "missing field 'modifiers'");
    parse_fails(LEAF("{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"modifiers\": []}"),
                "missing field 'flags'");
    parse_fails(LEAF("{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": [],"
                     " \"extra\": 1}"),
                "unknown field 'extra'");
    static const char *const bad_numbers[] = {
        "1",
        "\"1\"",
        "\"0x\"",
        "\"0b\"",
        "\"0x1g\"",
        "\"0b2\"",
        "\"x1\"",
        "\"-0x1\"",
        "\"0x100000000\"",
        "\"0x 1\"",
        "\"0X1\"",
        "\"0x1_0\"",
        "null",
        "\"0b111111111111111111111111111111111\"",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_numbers); i++) {
        char j[256];
        snprintf(j, sizeof(j),
                 LEAF("{\"leaf\": %s, \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": []}"),
                 bad_numbers[i]);
        parse_fails(j, "cpuid_modifiers[0].leaf: must be a 32-bit number string");
        snprintf(j, sizeof(j),
                 LEAF("{\"leaf\": \"0x0\", \"subleaf\": %s, \"flags\": 0, \"modifiers\": []}"),
                 bad_numbers[i]);
        parse_fails(j, "cpuid_modifiers[0].subleaf: must be");
    }
    static const char *const bad_flags[] = {"2",    "-1",   "\"0\"",     "0.0",
                                            "true", "null", "4294967297"};
    for (size_t i = 0; i < ARRAY_SIZE(bad_flags); i++) {
        char j[256];
        snprintf(
            j, sizeof(j),
            LEAF("{\"leaf\": \"0x0\", \"subleaf\": \"0x0\", \"flags\": %s, \"modifiers\": []}"),
            bad_flags[i]);
        parse_fails(j, "flags: must be 0 or 1");
    }
    parse_fails(LEAF("{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": {}}"),
                "cpuid_modifiers[0].modifiers: must be an array");
    parse_fails(LEAF(MOD("eax", "0b1") "," MOD("ebx", "0b1")),
                "cpuid_modifiers[1]: leaf 0x1 subleaf 0x0 already appears at [0]");
    /* The same leaf spelled two ways is still the same leaf. */
    parse_fails(LEAF("{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": []},"
                     "{\"leaf\": \"0b1\", \"subleaf\": \"0x00\", \"flags\": 1, \"modifiers\": []}"),
                "already appears");
}

Test(cpu_config, hostile_registers_and_bitmaps)
{
    parse_fails(LEAF(MOD("EAX", "0b1")), "register: must be one of eax, ebx, ecx, edx");
    parse_fails(LEAF(MOD("rax", "0b1")), "register: must be one of");
    parse_fails(LEAF(MOD("", "0b1")), "register: must be one of");
    parse_fails(LEAF("{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\":"
                     " [{\"register\": \"eax\", \"bitmap\": \"0b1\"},"
                     "  {\"register\": \"eax\", \"bitmap\": \"0b" X32 "\"}]}"),
                "modifiers[1].register: eax appears twice");
    parse_fails(LEAF("{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\":"
                     " [{\"register\": \"eax\"}]}"),
                "missing field 'bitmap'");
    parse_fails(LEAF("{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\":"
                     " [{\"register\": \"eax\", \"bitmap\": 5}]}"),
                "bitmap: must be");
    static const char *const bad_bitmaps[] = {
        "",      "0b",   "0b___",         "0b2",     "0bX",  "0b1 0",
        "0b0b1", "b101", "0b" ONES32 "1", "0b0" X32, "0b-1", "1" X32,
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_bitmaps); i++) {
        char j[512];
        snprintf(j, sizeof(j), LEAF(MOD("ecx", "%s")), bad_bitmaps[i]);
        parse_fails(j, "cpuid_modifiers[0].modifiers[0].bitmap: must be \"0b\" and 1 to 32");
    }
    /* 32 with separators, and a short one without the prefix: fine. */
    struct cpu_template *t = parse_ok(LEAF(MOD("ecx", "0b0000_1111_xxxxxxxxxxxxxxxxxxxxxxxx")));
    cr_assert_eq(t->leaves[0].regs[CPUID_ECX].mask, 0xff000000u);
    cr_assert_eq(t->leaves[0].regs[CPUID_ECX].value, 0x0f000000u);
    cpu_template_free(t);
    t = parse_ok(LEAF(MOD("ecx", "1x0")));
    cr_assert_eq(t->leaves[0].regs[CPUID_ECX].mask, 0x5u);
    cr_assert_eq(t->leaves[0].regs[CPUID_ECX].value, 0x4u);
    cpu_template_free(t);
}

Test(cpu_config, bitmap_width_is_exact)
{
    /* 33 digits of which the first is '1': one too many. */
    parse_fails(LEAF(MOD("ecx", "0b1" ONES32)), "1 to 32");
    struct cpu_template *t = parse_ok(LEAF(MOD("ecx", "0b" ONES32)));
    cpu_template_free(t);
}

Test(cpu_config, hostile_msrs)
{
    parse_fails(MSR("0x10a", "0b1") ",", "malformed JSON");
    parse_fails("{\"msr_modifiers\": [{\"addr\": \"0x10a\"}]}", "missing field 'bitmap'");
    parse_fails("{\"msr_modifiers\": [{\"bitmap\": \"0b1\"}]}", "missing field 'addr'");
    parse_fails(MSR("266", "0b1"), "msr_modifiers[0].addr: must be a 32-bit number");
    parse_fails(MSR("0x100000000", "0b1"), "addr: must be");
    parse_fails(MSR("0x802", "0b1"), "0x802 is not an MSR flint can set");
    parse_fails(MSR("0x2000", "0b1"), "0x2000 is not an MSR flint can set");
    parse_fails(MSR("0x40000000", "0b1"), "not an MSR flint can set");
    parse_fails(MSR("0xc0002000", "0b1"), "not an MSR flint can set");
    parse_fails(MSR("0x10a", "0b" ONES32 ONES32 "0"), "bitmap: must be \"0b\" and 1 to 64");
    parse_fails(MSR("0x10a", "0bq"), "1 to 64");
    parse_fails("{\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": \"0b1\"},"
                " {\"addr\": \"0b100001010\", \"bitmap\": \"0b0\"}]}",
                "msr_modifiers[1].addr: MSR 0x10a already appears at [0]");
    struct cpu_template *t = parse_ok(MSR("0xc0000080", "0b" ONES32 ONES32));
    cr_assert_eq(t->msrs[0].value, ~0ull);
    cpu_template_free(t);
    t = parse_ok(MSR("0x4b564d02", "0bx"));
    cpu_template_free(t);
}

Test(cpu_config, hostile_capabilities)
{
    static const char *const bad[] = {
        "171",    "\"\"",   "\"!\"",          "\"!!1\"",         "\"1a\"",
        "\"-1\"", "\" 1\"", "\"4294967296\"", "\"99999999999\"", "null"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char j[128];
        snprintf(j, sizeof(j), "{\"kvm_capabilities\": [%s]}", bad[i]);
        parse_fails(j, "kvm_capabilities[0]: must be a string \"N\" or \"!N\"");
    }
    parse_fails("{\"kvm_capabilities\": [\"5\", \"!5\"]}", "capability 5 already appears");
    struct cpu_template *t = parse_ok("{\"kvm_capabilities\": [\"4294967295\", \"!0\"]}");
    cr_assert_eq(t->caps[0].cap, 0xffffffffu);
    cpu_template_free(t);
}

Test(cpu_config, limits)
{
    size_t cap = 300 * 80 + 64;
    char *j = malloc(cap), *p = j;

    p += sprintf(p, "{\"cpuid_modifiers\": [");
    for (int i = 0; i <= CPU_TEMPLATE_MAX_LEAVES; i++)
        p += sprintf(p,
                     "%s{\"leaf\": \"0x%x\", \"subleaf\": \"0x0\", \"flags\": 0, "
                     "\"modifiers\": []}",
                     i ? "," : "", i);
    sprintf(p, "]}");
    parse_fails(j, "cpuid_modifiers: at most 256 leaves");
    p = j + sprintf(j, "{\"msr_modifiers\": [");
    for (int i = 0; i <= CPU_TEMPLATE_MAX_MSRS; i++)
        p += sprintf(p, "%s{\"addr\": \"0x%x\", \"bitmap\": \"0b1\"}", i ? "," : "", i);
    sprintf(p, "]}");
    parse_fails(j, "msr_modifiers: at most 64 MSRs");
    p = j + sprintf(j, "{\"kvm_capabilities\": [");
    for (int i = 0; i <= CPU_TEMPLATE_MAX_CAPS; i++)
        p += sprintf(p, "%s\"%d\"", i ? "," : "", i);
    sprintf(p, "]}");
    parse_fails(j, "kvm_capabilities: at most 64 entries");
    free(j);
}

/* ---- through the API ---- */

static struct vm_config cfg;
static struct api_ctl ctl;
static struct api_response resp;

static int stub_start(void *opaque, char *err, size_t errlen)
{
    (void)opaque;
    (void)err;
    (void)errlen;
    return 0;
}

static const struct api_vm_ops ops = {.start = stub_start};

static void setup(void)
{
    config_init(&cfg);
    memset(&ctl, 0, sizeof(ctl));
    memset(&resp, 0, sizeof(resp));
    ctl.cfg = &cfg;
    ctl.ops = &ops;
}

static void teardown(void)
{
    free(resp.body);
    config_free(&cfg);
}

TestSuite(api_cpu_config, .init = setup, .fini = teardown);

static int call(enum api_method m, const char *path, const char *body)
{
    free(resp.body);
    api_handle(&ctl, m, path, body, body ? strlen(body) : 0, &resp);
    return resp.status;
}

static const char *machine_template(void)
{
    static char got[32];
    json_error_t e;

    cr_assert_eq(call(API_METHOD_GET, "/machine-config", NULL), 200);
    json_t *j = json_loads(resp.body, 0, &e);
    cr_assert_not_null(j);
    json_t *v = json_object_get(j, "cpu_template");
    snprintf(got, sizeof(got), "%s", v ? json_string_value(v) : "(absent)");
    json_decref(j);
    return got;
}

#define CUSTOM "{\"cpuid_modifiers\": [" MOD("ecx", "0bx") "]}"
#define MC(t)  "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": \"" t "\"}"

Test(api_cpu_config, static_and_custom_templates_last_one_wins)
{
    cr_assert_str_eq(machine_template(), "(absent)");
    cr_assert_eq(call(API_METHOD_PUT, "/machine-config", MC("T2A")), 204, "%s", resp.body);
    cr_assert_eq(cfg.cpu_template, CPU_TEMPLATE_T2A);
    cr_assert_str_eq(machine_template(), "T2A");
    /* Intel templates are accepted here: the host is checked at InstanceStart. */
    cr_assert_eq(call(API_METHOD_PATCH, "/machine-config", "{\"cpu_template\": \"C3\"}"), 204);
    cr_assert_str_eq(machine_template(), "C3");
    /* A PUT without cpu_template keeps it. */
    cr_assert_eq(
        call(API_METHOD_PUT, "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 128}"), 204);
    cr_assert_str_eq(machine_template(), "C3");
    cr_assert_eq(call(API_METHOD_PUT, "/cpu-config", CUSTOM), 204, "%s", resp.body);
    cr_assert_eq(cfg.cpu_template, CPU_TEMPLATE_CUSTOM);
    cr_assert_not_null(cfg.custom_cpu);
    cr_assert_eq(cfg.custom_cpu->nleaves, 1);
    cr_assert_str_eq(machine_template(), "None", "Firecracker shows a custom template as None");
    cr_assert_eq(call(API_METHOD_PATCH, "/machine-config", "{\"vcpu_count\": 1}"), 204);
    cr_assert_eq(cfg.cpu_template, CPU_TEMPLATE_CUSTOM, "PATCH without cpu_template keeps it");
    cr_assert_eq(call(API_METHOD_PUT, "/machine-config", MC("T2S")), 204);
    cr_assert_eq(cfg.cpu_template, CPU_TEMPLATE_T2S);
    cr_assert_null(cfg.custom_cpu, "the custom template is dropped");
    cr_assert_eq(call(API_METHOD_PUT, "/cpu-config", CUSTOM), 204);
    cr_assert_eq(call(API_METHOD_PUT, "/machine-config", MC("None")), 204);
    cr_assert_eq(cfg.cpu_template, CPU_TEMPLATE_NONE);
    cr_assert_null(cfg.custom_cpu);
    cr_assert_str_eq(machine_template(), "(absent)", "None clears the template, as in Firecracker");
}

Test(api_cpu_config, refused_bodies_change_nothing)
{
    cr_assert_eq(call(API_METHOD_PUT, "/machine-config", MC("T2A")), 204);
    cr_assert_eq(call(API_METHOD_PUT, "/cpu-config", "{\"msr_modifiers\": [1]}"), 400);
    cr_assert(strstr(resp.body, "msr_modifiers[0]: must be an object"), "%s", resp.body);
    cr_assert_eq(call(API_METHOD_PUT, "/cpu-config", ""), 400);
    cr_assert_eq(call(API_METHOD_PUT, "/cpu-config", "{\"cpuid_modifiers\": [},"), 400);
    cr_assert_eq(call(API_METHOD_PUT, "/machine-config", MC("T2Z")), 400);
    cr_assert(strstr(resp.body, "'T2Z' is not a valid cpu_template"), "%s", resp.body);
    cr_assert_eq(cfg.cpu_template, CPU_TEMPLATE_T2A);
    cr_assert_null(cfg.custom_cpu);
    cr_assert_eq(call(API_METHOD_GET, "/cpu-config", NULL), 400);
    cr_assert_eq(call(API_METHOD_PATCH, "/cpu-config", CUSTOM), 400);
}

Test(api_cpu_config, pre_boot_only)
{
    char path[] = "/tmp/flint-cpu-kernel-XXXXXX", body[128];
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "k", 1), 1);
    close(fd);
    snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", path);
    cr_assert_eq(call(API_METHOD_PUT, "/boot-source", body), 204, "%s", resp.body);
    cr_assert_eq(call(API_METHOD_PUT, "/cpu-config", CUSTOM), 204);
    cr_assert_eq(call(API_METHOD_PUT, "/actions", "{\"action_type\": \"InstanceStart\"}"), 204,
                 "%s", resp.body);
    cr_assert_eq(call(API_METHOD_PUT, "/cpu-config", CUSTOM), 400);
    cr_assert(strstr(resp.body, "not supported after starting"), "%s", resp.body);
    unlink(path);
}

Test(api_cpu_config, config_file_cpu_config_is_a_path)
{
    char tmpl[] = "/tmp/flint-cpu-tmpl-XXXXXX", kern[] = "/tmp/flint-cpu-kern-XXXXXX";
    char json[512], err[256];
    int fd = mkstemp(tmpl), kfd = mkstemp(kern);

    cr_assert_geq(fd, 0);
    cr_assert_geq(kfd, 0);
    cr_assert_eq(write(fd, CUSTOM, strlen(CUSTOM)), (ssize_t)strlen(CUSTOM));
    close(fd);
    close(kfd);
    /* The file's template wins over machine-config's cpu_template. */
    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\"}, \"machine-config\": "
             "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": \"T2A\"},"
             " \"cpu-config\": \"%s\"}",
             kern, tmpl);
    cr_assert_eq(api_load_config(&ctl, json, strlen(json), err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.cpu_template, CPU_TEMPLATE_CUSTOM);
    cr_assert_eq(cfg.custom_cpu->nleaves, 1);
    /* GET /vm/config shows cpu-config as null, and loads again. */
    char *again = api_vm_config_json(&cfg);
    cr_assert(strstr(again, "\"cpu-config\":null"), "%s", again);
    free(again);
    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\"}, \"cpu-config\": 5}", kern);
    cr_assert_eq(api_load_config(&ctl, json, strlen(json), err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "cpu-config: must be the path"), "%s", err);
    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\"}, \"cpu-config\": \"/nonexistent\"}",
             kern);
    cr_assert_eq(api_load_config(&ctl, json, strlen(json), err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "cpu-config: /nonexistent: cannot read it"), "%s", err);
    /* A FIFO (nobody writing) or a directory is refused, not waited on. */
    char fifo[64];
    snprintf(fifo, sizeof(fifo), "/tmp/flint-cpu-fifo-%d", (int)getpid());
    unlink(fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(api_load_cpu_config_file(&cfg, fifo, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "cannot read it"), "%s", err);
    unlink(fifo);
    cr_assert_eq(api_load_cpu_config_file(&cfg, "/tmp", err, sizeof(err)), -EINVAL);
    fd = open(tmpl, O_WRONLY | O_TRUNC);
    cr_assert_eq(write(fd, "{\"x\": 1}", 8), 8);
    close(fd);
    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\"}, \"cpu-config\": \"%s\"}", kern,
             tmpl);
    cr_assert_eq(api_load_config(&ctl, json, strlen(json), err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "unknown field 'x'"), "%s", err);
    unlink(tmpl);
    unlink(kern);
}
