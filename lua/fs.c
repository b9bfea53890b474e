/*
** Files: quench.fs.* and the file object ("quench.file") over core/fs.c.
** Every waiting function is one op kind (lua/binding.h): the direct form
** performs it on its operands, building no op; the `_op` form returns an
** op (quench.op). I/O failures return nil, "ENAME: message", "ENAME"
** (libuv's names, as luv); misuse raises.
**
** The operands (1: path or file userdata, 2: second path, data or byte
** count, 3: offset) are an op's user values or the direct form's stack
** slots 1-3; the parameter (open: flags | mode << 32; mkdir: mode) is the
** op's `arg` or the direct form's slot 4.
**
** Cancel safety (a drop is a select loser, a timeout or an abort):
** - open: safe. A dropped open that succeeds anyway has its fd closed.
** - read with an offset: safe (pread moves nothing). Without: not safe
**   once started: the file position has moved past bytes nobody gets.
** - write: not safe once started: some or all of the bytes may be written.
** - stat, readdir: safe (nothing changes).
** - unlink, rename, mkdir, rmdir, sync: may have happened or not.
** - read_file: safe. write_file: the file may be left truncated or partial.
** A dropped request still in flight is uv_cancel'ed; if it already runs,
** its result is discarded and libuv's memory is freed by its callback.
**
** Ownership: the userdata is built closed (NULL) before the open is taken,
** so no error can leak an fd. f:close() never waits: the fd closes at once,
** or, while a request on the file still runs (a dropped one included), when
** the last of them ends. __close and __gc close it and release the core
** file. A file belongs to the runtime that made it (`serial`): that
** runtime's end closes it, and then every method but close raises.
*/
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "binding.h"

#define LQ_FILE "quench.file"

enum { READ_MAX = 1 << 30 };

typedef struct lq_file {
  qn_file *f;           /* NULL until opened, and once released (__close, __gc) */
  uint64_t serial;      /* of its runtime */
} lq_file;

/* ---- helpers ---- */

static const char *check_path(lua_State *L, int idx, const char *fname) {
  return lq_check_cstring(L, idx, fname, idx == 1 ? "argument #1 (path)" : "argument #2 (path)");
}

static lq_file *check_file(lua_State *L, int idx) {
  return (lq_file *)luaL_checkudata(L, idx, LQ_FILE);
}

/* Raise unless the file at idx is open and its runtime is the one running. */
static void check_open(lua_State *L, lq_file *u, const char *fname) {
  lq_check_alive(L, u->serial, fname, "file");
  if (u->f == NULL || qn_file_is_closed(u->f))
    luaL_error(L, "%s: attempt to use a closed file", fname);
}

static lq_file *open_file(lua_State *L, int idx, const char *fname) {
  lq_file *u = check_file(L, idx);
  check_open(L, u, fname);
  return u;
}

static int64_t opt_offset(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return -1;
  lua_Integer off = luaL_checkinteger(L, idx);
  luaL_argcheck(L, off >= 0, idx, "offset must be >= 0");
  return (int64_t)off;
}

static const char *uv_string(lua_State *L, int op, int n) {
  lq_op_arg(L, op, n);
  const char *s = lua_tostring(L, -1);   /* a string: the op keeps it alive */
  lua_pop(L, 1);
  return s;
}

static lua_Integer uv_integer(lua_State *L, int op, int n) {
  lq_op_arg(L, op, n);
  lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
  lua_pop(L, 1);
  return v;
}

static lq_file *file_of(lua_State *L, int op) {
  lq_op_arg(L, op, 1);
  lq_file *u = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return u;
}

static qn_file *uv_file_of(lua_State *L, int op) { return file_of(L, op)->f; }

/* Every function here is one lq_op_kind (lua/binding.h) for both forms:
   an op keeps its operands in user values 1-3 and its parameter (open
   flags and mode, a mkdir mode) in arg; the direct form leaves them at
   stack indexes 1-3 and the parameter at 4, and builds no op. */
static uint64_t op_param(lua_State *L, int op) {
  if (op != 0) return lq_test_op(L, op)->arg;
  return (uint64_t)lua_tointeger(L, 4);
}

/* Lay out the operands taken from the stack (0 = nil) and the parameter:
   as a new op of `kind` (pushed; returns 1), or, for the direct form, at
   1-4 (returns 0). */
static int operands(lua_State *L, int direct, const lq_op_kind *kind, int uv1, int uv2, int uv3,
                    uint64_t arg) {
  int idx[3] = { uv1, uv2, uv3 };
  if (!direct) {
    lq_op *op = lq_op_new(L, kind, 3);
    op->arg = arg;
    for (int i = 0; i < 3; i++) {
      if (idx[i] == 0) continue;
      lua_pushvalue(L, idx[i]);
      lua_setiuservalue(L, -2, i + 1);
    }
    return 1;
  }
  luaL_checkstack(L, 4, NULL);
  for (int i = 0; i < 3; i++) {
    if (idx[i] == 0) lua_pushnil(L);
    else lua_pushvalue(L, idx[i]);
  }
  lua_pushinteger(L, (lua_Integer)arg);
  lua_rotate(L, 1, 4);
  lua_settop(L, 4);
  return 0;
}

static void file_check(lua_State *L, int op, lq_coro *c) {
  (void)c;
  if (op == 0) return;                  /* the direct form checked its file (open_file) */
  char fname[40];
  snprintf(fname, sizeof fname, "quench.file:%s", lq_test_op(L, op)->kind->name);
  check_open(L, file_of(L, op), fname);
}

static int true_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  ssize_t r = qn_fs_result(f);
  if (r < 0) return lq_push_fail(L, (int)r);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- stat ---- */

static const char *mode_type(uint64_t mode64) {
  mode_t mode = (mode_t)mode64;
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISLNK(mode)) return "link";
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode)) return "char";
  if (S_ISBLK(mode)) return "block";
  return "unknown";
}

static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void set_time(lua_State *L, const char *k, uv_timespec_t t) {
  lua_pushnumber(L, (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec / 1e9);
  lua_setfield(L, -2, k);
}

static int stat_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  ssize_t r = qn_fs_result(f);
  if (r < 0) return lq_push_fail(L, (int)r);
  const uv_stat_t *s = qn_fs_statbuf(f);
  lua_createtable(L, 0, 16);
  lua_pushstring(L, mode_type(s->st_mode));
  lua_setfield(L, -2, "type");
  set_int(L, "size", s->st_size);
  set_int(L, "mode", s->st_mode);
  set_int(L, "perm", s->st_mode & 07777);
  set_int(L, "dev", s->st_dev);
  set_int(L, "ino", s->st_ino);
  set_int(L, "nlink", s->st_nlink);
  set_int(L, "uid", s->st_uid);
  set_int(L, "gid", s->st_gid);
  set_int(L, "rdev", s->st_rdev);
  set_int(L, "blksize", s->st_blksize);
  set_int(L, "blocks", s->st_blocks);
  set_time(L, "atime", s->st_atim);
  set_time(L, "mtime", s->st_mtim);
  set_time(L, "ctime", s->st_ctim);
  set_time(L, "birthtime", s->st_birthtim);
  return 1;
}

static qn_future *stat_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_stat_new(c->rt->core, uv_string(L, op, 1));
}

static qn_future *fstat_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_fstat_new(c->rt->core, uv_file_of(L, op));
}

static const lq_op_kind stat_kind = { "stat", NULL, stat_start, stat_finish, NULL };
static const lq_op_kind fstat_kind = { "stat", file_check, fstat_start, stat_finish, NULL };

/* ---- open ---- */

/* Lua-style and luv-style flags: r, r+, w, w+, a, a+, with x (exclusive),
   s (synchronous) and b (ignored); or an integer of UV_FS_O_* bits. */
static int check_flags(lua_State *L, int idx, const char *fname) {
  if (lua_isinteger(L, idx)) return (int)lua_tointeger(L, idx);
  const char *s = lq_opt_cstring(L, idx, fname, "argument #2 (flags)", "r");
  int base = 0, plus = 0, excl = 0, sync = 0;
  for (const char *p = s; *p; p++) {
    switch (*p) {
    case 'r': case 'w': case 'a':
      if (base) goto bad;
      base = *p;
      break;
    case '+': plus = 1; break;
    case 'x': excl = 1; break;
    case 's': sync = 1; break;
    case 'b': break;
    default: goto bad;
    }
  }
  if (base == 0 || (excl && base == 'r')) goto bad;
  int flags = plus ? UV_FS_O_RDWR : base == 'r' ? UV_FS_O_RDONLY : UV_FS_O_WRONLY;
  if (base == 'w') flags |= UV_FS_O_CREAT | UV_FS_O_TRUNC;
  if (base == 'a') flags |= UV_FS_O_CREAT | UV_FS_O_APPEND;
  if (excl) flags |= UV_FS_O_EXCL;
  if (sync) flags |= UV_FS_O_SYNC;
  return flags;
bad:
  return luaL_argerror(L, idx, "flags must be \"r\", \"r+\", \"w\", \"w+\", \"a\" or \"a+\" "
                               "(with \"x\", \"s\", \"b\"), or an integer");
}

static qn_future *open_start(lua_State *L, int op, lq_coro *c) {
  uint64_t a = op_param(L, op);
  return qn_fs_open_new(c->rt->core, uv_string(L, op, 1), (int)(uint32_t)a, (int)(a >> 32));
}

static int open_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  ssize_t r = qn_fs_result(f);
  if (r < 0) return lq_push_fail(L, (int)r);
  lq_file *u = lua_newuserdatauv(L, sizeof *u, 0);   /* before taking: the fd stays safe */
  u->f = NULL;
  u->serial = lq_module_of(L)->rt->serial;
  luaL_setmetatable(L, LQ_FILE);
  u->f = qn_fs_take_file(f);
  if (u->f == NULL) {
    lua_pop(L, 1);
    return lq_push_fail(L, UV_ENOMEM);
  }
  return 1;
}

static const lq_op_kind open_kind = { "open", NULL, open_start, open_finish, NULL };

static int make_open(lua_State *L, const char *fname, int direct) {
  check_path(L, 1, fname);
  int flags = check_flags(L, 2, fname);
  lua_Integer mode = luaL_optinteger(L, 3, 0666);
  luaL_argcheck(L, mode >= 0 && mode <= 07777, 3,
                "mode must be an integer in 0..4095 (e.g. 420 = 0644)");
  return operands(L, direct, &open_kind, 1, 0, 0,
                  (uint64_t)(uint32_t)flags | ((uint64_t)mode << 32));
}

/* ---- read and write ---- */

static qn_future *read_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_read_new(c->rt->core, uv_file_of(L, op), (size_t)uv_integer(L, op, 2),
                        uv_integer(L, op, 3));
}

/* up to n bytes, nil at the end of the file (n > 0), or nil, message, code */
static int read_finish(lua_State *L, int op, qn_future *f) {
  ssize_t r = qn_fs_result(f);
  if (r < 0) return lq_push_fail(L, (int)r);
  if (r == 0 && uv_integer(L, op, 2) > 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, qn_fs_data(f), (size_t)r);
  return 1;
}

static const lq_op_kind read_kind = { "read", file_check, read_start, read_finish, NULL };

static int make_read(lua_State *L, const char *fname, int direct) {
  lua_settop(L, 3);
  open_file(L, 1, fname);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "byte count must be >= 0");
  opt_offset(L, 3);
  lua_pushinteger(L, n > READ_MAX ? READ_MAX : n);
  return operands(L, direct, &read_kind, 1, lua_gettop(L), lua_isnoneornil(L, 3) ? 0 : 3, 0);
}

static qn_future *write_start(lua_State *L, int op, lq_coro *c) {
  lq_op_arg(L, op, 2);
  size_t n;
  const char *data = lua_tolstring(L, -1, &n);
  qn_future *f = qn_fs_write_new(c->rt->core, uv_file_of(L, op), data, n, uv_integer(L, op, 3));
  lua_pop(L, 1);
  return f;
}

/* the file (as Lua's file:write), or nil, message, code */
static int write_finish(lua_State *L, int op, qn_future *f) {
  ssize_t r = qn_fs_result(f);
  if (r < 0) return lq_push_fail(L, (int)r);
  lq_op_arg(L, op, 1);
  return 1;
}

static const lq_op_kind write_kind = { "write", file_check, write_start, write_finish, NULL };

static int make_write(lua_State *L, const char *fname, int direct) {
  lua_settop(L, 3);
  open_file(L, 1, fname);
  luaL_checkstring(L, 2);
  opt_offset(L, 3);
  return operands(L, direct, &write_kind, 1, 2, lua_isnoneornil(L, 3) ? 0 : 3, 0);
}

static qn_future *sync_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_fsync_new(c->rt->core, uv_file_of(L, op));
}

static const lq_op_kind sync_kind = { "sync", file_check, sync_start, true_finish, NULL };

/* ---- file methods ---- */

static int l_read(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.file:read");
  make_read(L, "quench.file:read", 1);
  return lq_perform(L, c, &read_kind, 0, "quench.file:read", NULL);
}

static int l_read_op(lua_State *L) { return make_read(L, "quench.file:read_op", 0); }

static int l_write(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.file:write");
  make_write(L, "quench.file:write", 1);
  return lq_perform(L, c, &write_kind, 0, "quench.file:write", NULL);
}

static int l_write_op(lua_State *L) { return make_write(L, "quench.file:write_op", 0); }

static int l_fstat(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.file:stat");
  open_file(L, 1, "quench.file:stat");
  operands(L, 1, &fstat_kind, 1, 0, 0, 0);
  return lq_perform(L, c, &fstat_kind, 0, "quench.file:stat", NULL);
}

static int l_fstat_op(lua_State *L) {
  open_file(L, 1, "quench.file:stat_op");
  operands(L, 0, &fstat_kind, 1, 0, 0, 0);
  return 1;
}

static int l_sync(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.file:sync");
  open_file(L, 1, "quench.file:sync");
  operands(L, 1, &sync_kind, 1, 0, 0, 0);
  return lq_perform(L, c, &sync_kind, 0, "quench.file:sync", NULL);
}

static int l_sync_op(lua_State *L) {
  open_file(L, 1, "quench.file:sync_op");
  operands(L, 0, &sync_kind, 1, 0, 0, 0);
  return 1;
}

static int is_open(const lq_file *u) { return u->f != NULL && !qn_file_is_closed(u->f); }

/* close: idempotent, never waits; true, or nil, message, code. */
static int l_close(lua_State *L) {
  lq_file *u = check_file(L, 1);
  int r = u->f ? qn_file_close(u->f) : 0;
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* __close and __gc: close, and let go of the core file. */
static int l_release(lua_State *L) {
  lq_file *u = luaL_testudata(L, 1, LQ_FILE);   /* __gc may be called by hand */
  if (u == NULL) return 0;
  if (u->f) qn_file_release(u->f);
  u->f = NULL;
  return 0;
}

static int l_fd(lua_State *L) {
  lq_file *u = check_file(L, 1);
  if (!is_open(u)) return 0;
  lua_pushinteger(L, qn_file_fd(u->f));
  return 1;
}

static int l_tostring(lua_State *L) {
  lq_file *u = check_file(L, 1);
  if (is_open(u)) lua_pushfstring(L, "quench.file (fd %d)", (int)qn_file_fd(u->f));
  else lua_pushliteral(L, "quench.file (closed)");
  return 1;
}

/* ---- path functions ---- */

static qn_future *readdir_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_scandir_new(c->rt->core, uv_string(L, op, 1));
}

static const char *dirent_type(uv_dirent_type_t t) {
  switch (t) {
  case UV_DIRENT_FILE: return "file";
  case UV_DIRENT_DIR: return "directory";
  case UV_DIRENT_LINK: return "link";
  case UV_DIRENT_FIFO: return "fifo";
  case UV_DIRENT_SOCKET: return "socket";
  case UV_DIRENT_CHAR: return "char";
  case UV_DIRENT_BLOCK: return "block";
  default: return "unknown";
  }
}

/* a list of {name =, type =}, sorted by name, without "." and ".." */
static int readdir_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  ssize_t r = qn_fs_result(f);
  if (r < 0) return lq_push_fail(L, (int)r);
  lua_createtable(L, (int)r, 0);
  uv_dirent_t ent;
  for (lua_Integer i = 1; qn_fs_scandir_next(f, &ent) == 0; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ent.name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, dirent_type(ent.type));
    lua_setfield(L, -2, "type");
    lua_rawseti(L, -2, i);
  }
  return 1;
}

static const lq_op_kind readdir_kind = { "readdir", NULL, readdir_start, readdir_finish, NULL };

static qn_future *unlink_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_unlink_new(c->rt->core, uv_string(L, op, 1));
}
static qn_future *rmdir_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_rmdir_new(c->rt->core, uv_string(L, op, 1));
}
static qn_future *mkdir_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_mkdir_new(c->rt->core, uv_string(L, op, 1), (int)op_param(L, op));
}
static qn_future *rename_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_rename_new(c->rt->core, uv_string(L, op, 1), uv_string(L, op, 2));
}

static const lq_op_kind unlink_kind = { "unlink", NULL, unlink_start, true_finish, NULL };
static const lq_op_kind rmdir_kind = { "rmdir", NULL, rmdir_start, true_finish, NULL };
static const lq_op_kind mkdir_kind = { "mkdir", NULL, mkdir_start, true_finish, NULL };
static const lq_op_kind rename_kind = { "rename", NULL, rename_start, true_finish, NULL };

static qn_future *read_file_start(lua_State *L, int op, lq_coro *c) {
  return qn_fs_read_file_new(c->rt->core, uv_string(L, op, 1));
}

static int read_file_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  const char *data;
  size_t len;
  int r = qn_fs_whole_result(f, &data, &len);
  if (r != 0) return lq_push_fail(L, r);
  lua_pushlstring(L, data, len);
  return 1;
}

static qn_future *write_file_start(lua_State *L, int op, lq_coro *c) {
  lq_op_arg(L, op, 2);
  size_t n;
  const char *data = lua_tolstring(L, -1, &n);
  qn_future *f = qn_fs_write_file_new(c->rt->core, uv_string(L, op, 1), data, n);
  lua_pop(L, 1);
  return f;
}

static int write_file_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  int r = qn_fs_whole_result(f, NULL, NULL);
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static const lq_op_kind read_file_kind = { "read_file", NULL, read_file_start, read_file_finish, NULL };
static const lq_op_kind write_file_kind = {
  "write_file", NULL, write_file_start, write_file_finish, NULL
};

/* Lay out the operands of a path function from its arguments (direct), or
   build its op; returns 1 (the op) or 0. */
static int make_path_op(lua_State *L, const lq_op_kind *kind, const char *fname, int direct) {
  lua_settop(L, 2);
  check_path(L, 1, fname);
  if (kind == &rename_kind) check_path(L, 2, fname);
  else if (kind == &write_file_kind) luaL_checkstring(L, 2);
  lua_Integer mode = 0;
  if (kind == &mkdir_kind) {
    mode = luaL_optinteger(L, 2, 0777);
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 2,
                  "mode must be an integer in 0..4095 (e.g. 493 = 0755)");
  }
  int two = kind == &rename_kind || kind == &write_file_kind;
  return operands(L, direct, kind, 1, two ? 2 : 0, 0, (uint64_t)mode);
}

/* The direct form of a path function: upvalue 2 is its kind, 3 its name. */
static int l_path_call(lua_State *L) {
  const lq_op_kind *kind = lua_touserdata(L, lua_upvalueindex(2));
  const char *fname = lua_tostring(L, lua_upvalueindex(3));
  lq_coro *c = lq_await_ctx(L, fname);
  make_path_op(L, kind, fname, 1);
  return lq_perform(L, c, kind, 0, fname, NULL);
}

static int l_path_op(lua_State *L) {
  return make_path_op(L, lua_touserdata(L, lua_upvalueindex(2)),
                      lua_tostring(L, lua_upvalueindex(3)), 0);
}

static int l_open(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.fs.open");
  make_open(L, "quench.fs.open", 1);
  return lq_perform(L, c, &open_kind, 0, "quench.fs.open", NULL);
}

static int l_open_op(lua_State *L) { return make_open(L, "quench.fs.open_op", 0); }

static const luaL_Reg file_methods[] = {
  {"read", l_read}, {"read_op", l_read_op}, {"write", l_write}, {"write_op", l_write_op},
  {"stat", l_fstat}, {"stat_op", l_fstat_op}, {"sync", l_sync}, {"sync_op", l_sync_op},
  {"close", l_close}, {"fd", l_fd}, {NULL, NULL}
};

static const lq_op_kind *const path_kinds[] = {
  &stat_kind, &readdir_kind, &unlink_kind, &rename_kind, &mkdir_kind, &rmdir_kind,
  &read_file_kind, &write_file_kind, NULL
};

static const luaL_Reg file_metamethods[] = {
  {"__close", l_release}, {"__gc", l_release}, {"__tostring", l_tostring}, {NULL, NULL}
};

void lq_fs_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_FILE, file_methods, file_metamethods);

  lua_newtable(L);                      /* quench.fs */
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_open, 1);
  lua_setfield(L, -2, "open");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_open_op, 1);
  lua_setfield(L, -2, "open_op");
  for (int i = 0; path_kinds[i]; i++) {
    const char *name = path_kinds[i]->name;
    lua_pushvalue(L, mod);
    lua_pushlightuserdata(L, (void *)path_kinds[i]);
    lua_pushfstring(L, "quench.fs.%s", name);
    lua_pushcclosure(L, l_path_call, 3);
    lua_setfield(L, -2, name);
    lua_pushvalue(L, mod);
    lua_pushlightuserdata(L, (void *)path_kinds[i]);
    lua_pushfstring(L, "quench.fs.%s_op", name);
    lua_pushcclosure(L, l_path_op, 3);
    lua_pushfstring(L, "%s_op", name);
    lua_insert(L, -2);
    lua_settable(L, -3);
  }
  lua_setfield(L, -2, "fs");
}
