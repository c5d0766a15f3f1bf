/*
 * libFuzzer target: the control API's request path, HTTP and JSON.
 *
 * The first byte picks what the rest is:
 *  - bit 7 clear: the bytes a client sends on one connection. They go
 *    through the HTTP reader in chunks of (byte & 0x3f) + 1 bytes, the way
 *    recv would hand them over; every complete request is routed and
 *    answered (api_handle, api_http_response) until the reader refuses the
 *    stream. Bits 6 picks the VM's phase (not started or running), so the
 *    post-boot paths are reached too.
 *  - bit 7 set: a --config-file (api_load_config), then GET /vm/config,
 *    whose answer must load again.
 * The VM side is tests/fake_vm.h. ASan and UBSan watch every access; the
 * configuration must stay within its limits whatever arrives.
 */
#include "api.h"
#include "api_http.h"
#include "fake_vm.h"
#include "config.h"
#include "log.h"
#include "mmds.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_limits(const struct vm_config *cfg)
{
    if (cfg->ndrives > CONFIG_MAX_DRIVES || cfg->nnets > CONFIG_MAX_NETS || cfg->vcpus < 1 ||
        cfg->vcpus > CONFIG_MAX_VCPUS || cfg->mem_mib < CONFIG_MIN_MEM_MIB ||
        cfg->mem_mib > CONFIG_MAX_MEM_MIB)
        abort();
    for (unsigned i = 1; i < cfg->ndrives; i++)
        if (cfg->drives[i].root_device)
            abort(); /* the root device is always drives[0] */
}

static void fuzz_stream(struct api_ctl *ctl, const uint8_t *data, size_t size, size_t chunk)
{
    struct api_http_reader r;
    size_t off = 0;

    api_http_reader_init(&r, API_HTTP_MAX_BODY);
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk, used;
        enum api_http_result res = api_http_feed(&r, (const char *)data + off, n, &used);

        if (res == API_HTTP_ERROR) {
            size_t len;
            free(api_http_response(r.err_status, "{}", true, &len));
            break;
        }
        if (used > n)
            abort();
        off += used;
        if (res == API_HTTP_REQUEST) {
            struct api_response resp;
            size_t len;
            api_handle(ctl, r.req.method, r.req.path, r.req.body, r.req.body_len, &resp);
            if (resp.status != 200 && resp.status != 204 && resp.status != 400 &&
                resp.status != 413)
                abort();
            free(api_http_response(resp.status, resp.body, !r.req.keep_alive, &len));
            free(resp.body);
            check_limits(ctl->cfg);
        }
    }
    api_http_reader_free(&r);
}

static void fuzz_config(struct api_ctl *ctl, const uint8_t *data, size_t size)
{
    char err[512];
    char *again;

    if (api_load_config(ctl, (const char *)data, size, err, sizeof(err)))
        return;
    check_limits(ctl->cfg);
    again = api_vm_config_json(ctl->cfg);
    if (again) {
        struct vm_config cfg2;
        struct api_ctl ctl2 = *ctl;
        struct mmds store2;
        config_init(&cfg2);
        ctl2.cfg = &cfg2;
        cfg2.mmds = mmds_init(&store2, 0) ? NULL : &store2;
        /* What GET /vm/config says must load (files may have gone since). */
        if (api_load_config(&ctl2, again, strlen(again), err, sizeof(err)) &&
            !strstr(err, "cannot open"))
            abort();
        if (cfg2.mmds)
            mmds_fini(&store2);
        config_free(&cfg2);
    }
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vm_config cfg;
    struct mmds store;
    struct api_ctl ctl = {
        .cfg = &cfg,
        .instance_id = "fuzz",
        .vmm_version = "0.0.0",
        .ops = &fake_vm_ops,
    };

    if (size < 1)
        return 0;
    log_set_level(LOG_OFF);
    config_init(&cfg);
    /* A small store, so the size limit (413) is reached too. */
    cfg.mmds = mmds_init(&store, 512) ? NULL : &store;
    if (data[0] & 0x80) {
        fuzz_config(&ctl, data + 1, size - 1);
    } else {
        ctl.state = (data[0] & 0x40) ? API_VM_RUNNING : API_VM_NOT_STARTED;
        fuzz_stream(&ctl, data + 1, size - 1, (size_t)(data[0] & 0x3f) + 1);
    }
    if (cfg.mmds)
        mmds_fini(&store);
    config_free(&cfg);
    return 0;
}
