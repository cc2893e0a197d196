-- tide as a LuaRocks rock, built with CMake as Torch7's rockspecs did:
--   luarocks --lua-version=5.4 make                  (from the source tree)
--   luarocks --lua-version=5.4 --tree DIR make       (into a tree of your own)
-- It installs the `tide` command in the tree's bin/, the Lua files where
-- lua5.4 finds them (`require "tide"`), tide.core in lib/, and the docs
-- beside the Lua files (tide/doc), where the installed `tide` finds them
-- for `?name`. The Debian packages of deps/debian-packages.txt must be
-- installed; nothing is downloaded.
--
-- The build goes to build.luarocks/ (configured on first use); set
-- TIDE_BUILD_DIR to install from a build directory you already have
-- (`make build` makes build/): only what changed is rebuilt.
rockspec_format = "3.0"
package = "tide"
version = "scm-1"

source = {
    url = "git+file:///dev/null",
}

description = {
    summary = "A deep learning runtime with a C core and a Lua 5.4 face",
    detailed = [[
tide: tensors, autograd, CPU (oneDNN, OpenBLAS) and CUDA kernels, every
PyTorch loss with its exact semantics, nn modules, optimizers, data
loaders and an experiment toolkit, in the spirit of Torch7.]],
    license = "see the repository",
}

dependencies = {
    "lua >= 5.4, < 5.5",
}

build = {
    type = "command",
    -- $(PREFIX) and friends are luarocks' variables; shell ones are
    -- written ${...} so luarocks leaves them alone
    build_command = [[
B="${TIDE_BUILD_DIR:-build.luarocks}"
if [ ! -f "$B/CMakeCache.txt" ]; then cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release || exit 1; fi
cmake --build "$B" --target tide tide_core -j"$(getconf _NPROCESSORS_ONLN)"
]],
    -- the build's own install into a staging folder, then each part where
    -- luarocks deploys it from: bin/, lua/ and lib/ of the rock
    install_command = [[
B="${TIDE_BUILD_DIR:-build.luarocks}"
S="$(PREFIX)/cmake-install"
rm -rf "$S" && cmake --install "$B" --prefix "$S" > /dev/null || exit 1
for f in "$S/bin/tide" "$S/share/lua/5.4/tide/init.lua" "$S/lib/lua/5.4/tide/core.so"; do
    [ -f "$f" ] || { echo "tide rockspec: the build in $B did not install $f (an install folder set by hand?)" >&2; exit 1; }
done
mkdir -p "$(BINDIR)" "$(LUADIR)" "$(LIBDIR)" "$(LUADIR)/tide/doc" &&
cp "$S/bin/tide" "$(BINDIR)/" &&
cp -R "$S/share/lua/5.4/." "$(LUADIR)/" &&
cp -R "$S/lib/lua/5.4/." "$(LIBDIR)/" &&
cp "$S"/share/doc/tide/*.md "$(LUADIR)/tide/doc/" &&
rm -rf "$S"
]],
}
