/* The tide command: what main.c, repl.c, complete.c and help.c share. */
#ifndef TIDE_CLI_H
#define TIDE_CLI_H

#include <lua.h>

#ifndef TIDE_VERSION
#define TIDE_VERSION "0.1.0"
#endif

/* Name used in front of error messages: always "tide", whatever argv[0]. */
#define TIDE_PROGNAME "tide"

/* Calls the function below `narg` arguments on the stack with a traceback
   handler and Ctrl-C armed (an interrupt raises "interrupted!"). */
int tide_docall(lua_State *L, int narg, int nres);

/* Prints the error on top of the stack as "tide: msg" on stderr and pops
   it when status is not LUA_OK; returns status. */
int tide_report(lua_State *L, int status);

/* Monotonic wall clock in seconds. */
double tide_now(void);

/* Runs the read-eval-print loop on stdin until end of input; returns the
   process exit status. */
int tide_repl(lua_State *L);

/* Installs tab completion of globals, fields and methods for state L. */
void tide_complete_init(lua_State *L);

/* Prints the help for `name` (REPL help when empty) on stdout, through a
   pager when long and stdout is a terminal; values named in `name`
   (?x:sum) are looked up among L's globals. */
void tide_help(lua_State *L, const char *name);

#endif
