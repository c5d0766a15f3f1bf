/* exitstatus: exit with status=N from the command line (default 7). */
#include "shim.h"

int main(void)
{
    return (int)shim_arg_int("status", 7);
}
