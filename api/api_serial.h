/*
 * api_serial.h - PUT /serial and the "serial" section of a config file
 * (Firecracker's SerialDevice): where the guest's serial output goes.
 * Internal to the API (api_routes.c calls it).
 */
#ifndef FLINT_API_SERIAL_H
#define FLINT_API_SERIAL_H

#include "api.h"

#include <jansson.h>

/* Check a SerialDevice body and set cfg->serial_out_path: a string names
 * the file or named pipe (opened, created if need be, at InstanceStart);
 * null or no field puts output back on stdout. An existing path must be a
 * regular file or a named pipe, a new one's directory must exist;
 * `rate_limiter` only null. Returns 0 or -EINVAL with one line in err;
 * nothing changes on failure. */
int api_put_serial(struct api_ctl *ctl, json_t *body, char *err, size_t errlen);

/* GET /vm/config's "serial": {"serial_out_path": PATH} or null. */
json_t *api_serial_json(const struct vm_config *cfg);

#endif /* FLINT_API_SERIAL_H */
