/*
 * api_cpu_config.h - custom CPU templates in Firecracker's JSON format
 * (PUT /cpu-config, and a config file's "cpu-config" path), for x86_64:
 *
 *   {"kvm_capabilities": ["171", "!172"],
 *    "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
 *        "modifiers": [{"register": "ecx", "bitmap": "0bxxxx...0xx"}]}],
 *    "msr_modifiers": [{"addr": "0x10a", "bitmap": "0b0000...xx1"}]}
 *
 * Every key is optional. Numbers are strings with a 0x or 0b prefix; a
 * bitmap is an optional "0b" and then at most 32 (CPUID) or 64 (MSR)
 * characters of 0, 1 or x (leave the bit as it is), '_' allowed between
 * them, the last character being bit 0. Everything the format allows but
 * cannot mean something is refused: a duplicate leaf/subleaf, register,
 * MSR or capability, flags other than 0 or 1, an MSR outside the ranges
 * x86 defines or in the x2APIC range, aarch64's reg_modifiers and
 * vcpu_features, and more entries than cpu_template.h's limits.
 */
#ifndef FLINT_API_CPU_CONFIG_H
#define FLINT_API_CPU_CONFIG_H

#include "config.h"
#include "cpu_template.h"

#include <stddef.h>

struct json_t;

/* Parse a template object into a new *out (cpu_template_free). Returns 0
 * or -EINVAL / -ENOMEM with one line naming the field in err. */
int cpu_config_from_json(struct json_t *root, struct cpu_template **out, char *err, size_t errlen);

/* The same from JSON text. */
int cpu_config_parse(const char *json, size_t len, struct cpu_template **out, char *err,
                     size_t errlen);

/* PUT /cpu-config: on success cfg boots with this template
 * (CPU_TEMPLATE_CUSTOM, replacing a cpu_template), else cfg is as it was. */
int api_put_cpu_config(struct vm_config *cfg, struct json_t *body, char *err, size_t errlen);

/* A config file's "cpu-config": the path of a template file (at most
 * 1 MiB), as Firecracker's --config-file takes it. */
int api_load_cpu_config_file(struct vm_config *cfg, const char *path, char *err, size_t errlen);

#endif /* FLINT_API_CPU_CONFIG_H */
