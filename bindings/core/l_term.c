/* tide.core: terminal queries for the Lua library (tide.progress). */
#include "l_util.h"

#include <string.h>
#include <unistd.h>

#include <lualib.h>

/* isatty(fd | file | "stdin" | "stdout" | "stderr") -> boolean
 * Anything else that is not a file (a table standing in for a stream, a
 * closed file) is not a terminal. */
static int m_isatty(lua_State *L)
{
    int fd = -1;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        fd = (int)luaL_checkinteger(L, 1);
    } else if (lua_type(L, 1) == LUA_TSTRING) {
        const char *name = lua_tostring(L, 1);
        if (strcmp(name, "stdin") == 0)
            fd = 0;
        else if (strcmp(name, "stdout") == 0)
            fd = 1;
        else if (strcmp(name, "stderr") == 0)
            fd = 2;
        else
            return luaL_argerror(
                L, 1,
                lua_pushfstring(L, "expected \"stdin\", \"stdout\" or \"stderr\", got \"%s\"",
                                name));
    } else {
        luaL_Stream *s = (luaL_Stream *)luaL_testudata(L, 1, LUA_FILEHANDLE);
        if (s && s->closef && s->f) fd = fileno(s->f);
    }
    lua_pushboolean(L, fd >= 0 && isatty(fd));
    return 1;
}

const luaL_Reg lt_term_funcs[] = {
    {"isatty", m_isatty},
    {NULL, NULL},
};
