// Thin RAII helpers over the SQLite C API, and the one mapping from SQLite
// result codes to Status. Internal to store/ (and to any module that keeps
// its own tables in xnai.db through the SqliteStore's connections).
//
// Thread safety: none of these objects may be used from two threads at once;
// they are as thread-safe as the connection they wrap (xnai opens every
// connection with SQLITE_OPEN_NOMUTEX and hands it to one thread at a time).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <sqlite3.h>

#include "base/status.h"

namespace xnai::store::sqlite {

// Maps a failed SQLite result code (primary or extended) to a Status:
//   BUSY/LOCKED          -> Unavailable("database is locked by another process; retry later")
//   FULL (or IOERR with ENOSPC) -> ResourceExhausted("disk full ...")
//   CORRUPT/NOTADB       -> Corruption naming the database file
//   IOERR                -> IOError
//   CANTOPEN             -> from errno (NotFound, PermissionDenied, IOError)
//   CONSTRAINT_UNIQUE/PRIMARYKEY -> AlreadyExists; other constraints -> InvalidArgument
//                           (FOREIGNKEY -> FailedPrecondition)
//   READONLY/PERM/AUTH   -> PermissionDenied
//   NOMEM -> ResourceExhausted, TOOBIG -> TooLarge, anything else -> Internal.
// `db` may be null (then no message or file name is available). `context`
// says what was being done ("insert chunk").
Status StatusFromSqlite(int rc, sqlite3* db, std::string_view context);

// A prepared statement. Bind errors are remembered and reported by the next
// Step()/Exec(), so call sites can chain binds without checking each one.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  ~Stmt();

  // Prepares exactly one statement. Errors as StatusFromSqlite.
  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql);

  // Parameter indexes are 1-based, as in SQLite.
  Stmt& BindInt(int index, int64_t value);
  Stmt& BindDouble(int index, double value);
  Stmt& BindText(int index, std::string_view value);  // copied by SQLite
  Stmt& BindNull(int index);
  Stmt& BindBlob(int index, const void* data, size_t size);  // copied by SQLite

  // Advances one row: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion, ignoring any rows.
  Status Exec();
  // Makes the statement ready to run again (bindings are kept).
  void Reset();

  int64_t ColumnInt(int col) const;
  double ColumnDouble(int col) const;
  std::string ColumnText(int col) const;  // empty for NULL
  bool ColumnIsNull(int col) const;
  // The column's bytes (a blob); empty for NULL.
  std::string_view ColumnBlob(int col) const;

  sqlite3* db() const { return db_; }
  // The raw SQLite result code of the last Step() (SQLITE_ROW, SQLITE_DONE or
  // an error code), for callers that map some errors differently.
  int last_rc() const { return last_rc_; }

 private:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  void NoteBind(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int bind_rc_ = SQLITE_OK;
  int last_rc_ = SQLITE_OK;
};

// Runs one or more statements without results (migrations, pragmas).
Status ExecScript(sqlite3* db, const char* sql, std::string_view context);

// Returns the single integer a query yields (e.g. "PRAGMA user_version").
Result<int64_t> QueryInt(sqlite3* db, const char* sql, std::string_view context);

// A write transaction started with BEGIN IMMEDIATE, so the write lock is
// taken up front (waiting up to the busy timeout) instead of failing halfway
// through. Rolls back on destruction unless Commit() succeeded.
class WriteTransaction {
 public:
  static Result<WriteTransaction> Begin(sqlite3* db);
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  WriteTransaction(WriteTransaction&& other) noexcept : db_(other.db_), active_(other.active_) {
    other.active_ = false;
  }
  WriteTransaction& operator=(WriteTransaction&&) = delete;
  ~WriteTransaction();

  Status Commit();

 private:
  explicit WriteTransaction(sqlite3* db) : db_(db), active_(true) {}
  sqlite3* db_;
  bool active_;
};

// Rolls back whatever transaction is open on `db` (no-op if none). SQLite
// rolls back by itself after some errors (SQLITE_FULL, IOERR), so a plain
// ROLLBACK could fail with "no transaction is active"; this checks first.
void RollbackIfActive(sqlite3* db);

}  // namespace xnai::store::sqlite
