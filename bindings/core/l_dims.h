/* tide.core: the arguments of the reductions over several dims. */
#ifndef TIDE_L_DIMS_H
#define TIDE_L_DIMS_H

#include "l_util.h"

/* the stack top after dropping trailing nils (an explicit nil argument is
 * no argument), for checks that nothing follows the last argument */
int lt_top(lua_State *L);
/* an argument error at n + 1 when anything but nil follows argument n
 * (an option tide lacks, passed positionally or in a table, is never
 * silently dropped) */
void lt_no_more(lua_State *L, int n, const char *after);
/* the index of the trailing options table (the last argument, at or after
 * `from`, when it is a table without a [1]: a list is dims), or 0 */
int lt_trailing_options(lua_State *L, int from);
/* dims at arg: nil or an empty list (every dim: *n = 0), a number, or a
 * list of numbers; returns the count */
int lt_check_dims(lua_State *L, int arg, int *dims);
/* keepdim at arg: nil (false) or a boolean */
bool lt_check_keepdim(lua_State *L, int arg);
/* option `dtype` of the table at arg (0: none): *has set when given */
td_dtype lt_opt_dtype(lua_State *L, int arg, bool *has);

#endif
