/* tide.core: what every binding file shares.
 *
 * A tensor userdata is an lt_box holding one reference to a td_tensor; a
 * NULL pointer marks a closed tensor (or a result slot not yet filled).
 * Results are made this way: push an empty box with lt_new, let the
 * runtime write into its slot, then lt_check_status. If the call failed,
 * the empty box is garbage; anything already boxed is reclaimed by the
 * collector, so raising an error never leaks a td_tensor.
 */
#ifndef TIDE_L_UTIL_H
#define TIDE_L_UTIL_H

#include <lauxlib.h>
#include <lua.h>

#include "tide/tide.h"

#define LT_TENSOR "tide.Tensor"

typedef struct {
    td_tensor *t;
} lt_box;

/* ---- tensors on the Lua stack ------------------------------------------ */
/* push an empty tensor userdata and return its slot */
td_tensor **lt_new(lua_State *L);
/* push t with a new reference */
void lt_push_retained(lua_State *L, td_tensor *t);
/* the tensor at arg; error when it is not a tensor or is closed */
td_tensor *lt_check(lua_State *L, int arg);
/* the tensor at arg, or NULL when arg holds no tensor (closed ones still error) */
td_tensor *lt_test(lua_State *L, int arg);
/* the tensor at arg, or a new scalar tensor of dtype dt when it is a number
 * (the scalar is pushed on the stack to keep it alive) */
td_tensor *lt_check_tensor_or_number(lua_State *L, int arg, td_dtype dt, const char *fname);
/* release the tensor in the box at idx now (a temporary no longer needed) */
void lt_drop(lua_State *L, int idx);

/* ---- errors ------------------------------------------------------------- */
/* raise the pending runtime error; runtime argument n is Lua argument
 * n + shift (when n > 0) */
int lt_fail(lua_State *L, const char *fname, int shift);
/* on failure raise (as lt_fail), on success account new memory */
void lt_check_status(lua_State *L, td_status st, const char *fname, int shift);
#define LT_CALL(L, call, fname) lt_check_status((L), (call), (fname), 0)

/* ---- arguments ---------------------------------------------------------- */
/* a shape from a table at arg, or from the numbers starting at arg
 * (varargs form, when allow_varargs); returns ndim, sets *next to the first
 * argument after the shape. allow_neg permits -1 (view/reshape). */
int lt_check_shape(lua_State *L, int arg, int64_t *shape, int allow_varargs, int allow_neg,
                   int *next);
/* a 0-based dim; negative allowed (the runtime wraps it) */
int lt_check_dim(lua_State *L, int arg);
/* a dtype name */
td_dtype lt_check_dtype(lua_State *L, int arg);
td_dtype lt_parse_dtype(lua_State *L, int arg, const char *name);
/* is the value at arg an options table (a plain table, not a tensor) */
int lt_is_options(lua_State *L, int arg);
/* check that the table at arg (or nil) has only the allowed keys
 * (a NULL-terminated list); returns 1 when a table is present */
int lt_check_options(lua_State *L, int arg, const char *const *allowed);
/* an argument past the last one a function takes is an error, as in
 * PyTorch, rather than an option silently dropped; trailing nils pass */
void lt_check_nargs(lua_State *L, int max);
/* push field `name` of the options table at arg (nil when arg is not a table) */
int lt_opt_field(lua_State *L, int arg, const char *name);
double lt_opt_number(lua_State *L, int arg, const char *name, double def);
int lt_opt_boolean(lua_State *L, int arg, const char *name, int def);
lua_Integer lt_opt_integer(lua_State *L, int arg, const char *name, lua_Integer def);
/* option `name` as a tensor, or NULL when absent; the options table keeps it alive */
td_tensor *lt_opt_tensor(lua_State *L, int arg, const char *name);
/* option `reduction` ("none" | "mean" | "sum", and "batchmean" where allowed) */
#include "tide/losses.h"
/* options.memory_format: "contiguous_format" (false, the default) or "channels_last" (true) */
bool lt_opt_channels_last(lua_State *L, int arg, const char *fn);
td_reduction lt_opt_reduction(lua_State *L, int arg, const char *def, int allow_batchmean);

/* creation options {dtype, requires_grad, device} at arg (a table, a dtype
 * string, or nil) */
typedef struct {
    td_dtype dtype;
    int has_dtype;
    int requires_grad;
    td_device device;
    int has_device;
} lt_create_opts;
void lt_check_create_opts(lua_State *L, int arg, lt_create_opts *o, td_dtype def);
/* move the tensor on top of the stack to the device asked for, then apply
 * requires_grad to it */
void lt_apply_create_opts(lua_State *L, const lt_create_opts *o, int arg);
/* ---- devices (l_device.c) ------------------------------------------------ */
/* "cpu", "cuda", "cuda:N": an argument error when unknown or not available
 * here (no CUDA in this build, no GPU on this machine) */
td_device lt_parse_device(lua_State *L, int arg, const char *s);
void lt_check_device(lua_State *L, int arg, const char *device);
int lt_is_device_name(const char *s);
/* replace the tensor on top of the stack by its copy on dev */
void lt_move_top(lua_State *L, td_device dev, const char *fname);
/* push tide.memory's table for a CUDA device */
int lt_push_cuda_memory(lua_State *L, int arg, td_device d);
/* registration through the device gate (see l_device.c): set each
 * function of r into the table on top of the stack / push one */
void lt_register(lua_State *L, const luaL_Reg *r);
void lt_push_registered(lua_State *L, const luaL_Reg *r);
void lt_install_oom_handler(lua_State *L);
extern const luaL_Reg lt_device_methods[]; /* t:device, t:cpu, t:cuda, t:to */
extern const luaL_Reg lt_cuda_funcs[];     /* tide.cuda */

/* ---- memory accounting -------------------------------------------------- */
/* feed the bytes the runtime allocated since the last call to Lua's
 * collector (see l_util.c) */
void lt_account(lua_State *L);

/* ---- registration (one table per file) ---------------------------------- */
extern const luaL_Reg lt_tensor_methods[]; /* l_tensor.c */
extern const luaL_Reg lt_tensor_meta[];    /* l_tensor.c: __gc, __index, ... */
extern const luaL_Reg lt_create_funcs[];   /* l_create.c (module only) */
extern const luaL_Reg lt_ops_methods[];    /* l_ops.c */
/* the unary rows of the op table into the module and the methods, and
 * op_table() into the module (l_ops.c) */
void lt_register_op_table(lua_State *L, int module, int methods);
/* round with decimals (replacing the op table's), nan_to_num, isclose, allclose (l_numeric.c) */
extern const luaL_Reg lt_numeric_methods[];
extern const luaL_Reg lt_ops_meta[];         /* l_ops.c: __add, ... */
extern const luaL_Reg lt_shape_methods[];    /* l_shape.c */
extern const luaL_Reg lt_shape_funcs[];      /* l_shape.c (module only) */
extern const luaL_Reg lt_autograd_methods[]; /* l_autograd.c */
extern const luaL_Reg lt_autograd_funcs[];   /* l_autograd.c (module only) */
/* every row of the loss table (l_loss.c), and loss_table, loss_check_options */
void lt_register_losses(lua_State *L);
/* layers, optimizers, data readers, checkpoints (l_conv.c ... l_serialize.c, module only) */
extern const luaL_Reg lt_conv_funcs[], lt_layers_funcs[], lt_optim_funcs[], lt_data_funcs[],
    lt_serialize_funcs[];
/* scaled_dot_product_attention (l_attention.c, module only) */
extern const luaL_Reg lt_attention_funcs[];
/* sort, argsort, topk, flip, roll, tril, triu (l_reorder.c) */
extern const luaL_Reg lt_reorder_methods[];
/* terminal queries (l_term.c, module only) */
extern const luaL_Reg lt_term_funcs[];
void lt_push_distributed(lua_State *L); /* l_distributed.c: the tide.core.distributed table */
/* all, any, logsumexp, cumsum, cumprod; and one_hot (module only; l_reduce.c) */
extern const luaL_Reg lt_reduce_methods[], lt_reduce_funcs[];

/* l_tensor.c: with the metatable and then the methods table on the stack,
 * pops the methods and sets metatable.__index */
int lt_install_index(lua_State *L);

/* fields of l_tensor.c's __index / __newindex that l_autograd.c provides */
int lt_get_field(lua_State *L, td_tensor *t, const char *key);
int lt_set_field(lua_State *L, td_tensor *t, const char *key);

#endif
