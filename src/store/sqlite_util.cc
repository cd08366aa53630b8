#include "store/sqlite_util.h"

#include <cerrno>
#include <utility>

#include "base/files.h"

namespace xnai::store::sqlite {

namespace {

std::string DbFileName(sqlite3* db) {
  if (db == nullptr) return "(unknown)";
  const char* name = sqlite3_db_filename(db, "main");
  return (name != nullptr && *name != '\0') ? std::string(name) : std::string("(temporary)");
}

std::string Describe(sqlite3* db, std::string_view context) {
  std::string out(context);
  if (db != nullptr) {
    out += ": ";
    out += sqlite3_errmsg(db);
  }
  return out;
}

}  // namespace

Status StatusFromSqlite(int rc, sqlite3* db, std::string_view context) {
  const int primary = rc & 0xff;
  switch (primary) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return Status::Ok();
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable("database is locked by another process; retry later");
    case SQLITE_FULL:
      return Status::ResourceExhausted("disk full: cannot write database '" + DbFileName(db) + "'");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption("database '" + DbFileName(db) + "' is corrupt or not a database (" +
                                Describe(db, context) + ")");
    case SQLITE_IOERR: {
      int err = db != nullptr ? sqlite3_system_errno(db) : 0;
      if (err == ENOSPC || err == EDQUOT) {
        return Status::ResourceExhausted("disk full: cannot write database '" + DbFileName(db) +
                                         "'");
      }
      return Status::IOError("database '" + DbFileName(db) + "': " + Describe(db, context));
    }
    case SQLITE_CANTOPEN: {
      int err = db != nullptr ? sqlite3_system_errno(db) : 0;
      std::string what = "open database '" + DbFileName(db) + "'";
      if (err != 0) return StatusFromErrno(err, what);
      return Status::IOError(what + ": " + Describe(db, context));
    }
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
          return Status::AlreadyExists(Describe(db, context));
        case SQLITE_CONSTRAINT_FOREIGNKEY:
          return Status::FailedPrecondition(Describe(db, context));
        default:
          return Status::InvalidArgument(Describe(db, context));
      }
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Status::PermissionDenied("database '" + DbFileName(db) +
                                      "': " + Describe(db, context));
    case SQLITE_NOMEM:
      return Status::ResourceExhausted("out of memory (" + std::string(context) + ")");
    case SQLITE_TOOBIG:
      return Status::TooLarge(Describe(db, context));
    default:
      return Status::Internal(Describe(db, context) + " (sqlite code " + std::to_string(rc) + ")");
  }
}

Stmt::Stmt(Stmt&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      bind_rc_(other.bind_rc_),
      last_rc_(other.last_rc_) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_rc_ = other.bind_rc_;
    last_rc_ = other.last_rc_;
  }
  return *this;
}

Stmt::~Stmt() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Result<Stmt> Stmt::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) {
    if (stmt != nullptr) sqlite3_finalize(stmt);
    return Err(StatusFromSqlite(rc, db, "prepare"));
  }
  if (stmt == nullptr) return Err(Status::Internal("prepare: empty SQL statement"));
  return Stmt(db, stmt);
}

Stmt& Stmt::BindInt(int index, int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}

Stmt& Stmt::BindDouble(int index, double value) {
  NoteBind(sqlite3_bind_double(stmt_, index, value));
  return *this;
}

Stmt& Stmt::BindText(int index, std::string_view value) {
  // A non-null pointer even for an empty view: a null pointer binds NULL.
  const char* data = value.data() != nullptr ? value.data() : "";
  NoteBind(sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Stmt& Stmt::BindBlob(int index, const void* data, size_t size) {
  // Never a null pointer: that would bind NULL instead of an empty blob.
  static const char kEmpty = 0;
  NoteBind(sqlite3_bind_blob64(stmt_, index, data != nullptr ? data : &kEmpty, size,
                               SQLITE_TRANSIENT));
  return *this;
}

Stmt& Stmt::BindNull(int index) {
  NoteBind(sqlite3_bind_null(stmt_, index));
  return *this;
}

Result<bool> Stmt::Step() {
  if (bind_rc_ != SQLITE_OK) {
    last_rc_ = bind_rc_;
    return Err(StatusFromSqlite(bind_rc_, db_, "bind"));
  }
  int rc = sqlite3_step(stmt_);
  last_rc_ = rc;
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Err(StatusFromSqlite(rc, db_, "step"));
}

Status Stmt::Exec() {
  while (true) {
    auto row = Step();
    if (!row) return row.error();
    if (!*row) return Status::Ok();
  }
}

void Stmt::Reset() { sqlite3_reset(stmt_); }

int64_t Stmt::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }

double Stmt::ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }

std::string Stmt::ColumnText(int col) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (text == nullptr) return {};
  // Length after the text pointer is fetched, as SQLite documents.
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::string_view Stmt::ColumnBlob(int col) const {
  const void* data = sqlite3_column_blob(stmt_, col);
  if (data == nullptr) return {};
  return std::string_view(static_cast<const char*>(data),
                          static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

bool Stmt::ColumnIsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

Status ExecScript(sqlite3* db, const char* sql, std::string_view context) {
  char* errmsg = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &errmsg);
  if (errmsg != nullptr) sqlite3_free(errmsg);  // sqlite3_errmsg(db) still has it
  if (rc != SQLITE_OK) return StatusFromSqlite(rc, db, context);
  return Status::Ok();
}

Result<int64_t> QueryInt(sqlite3* db, const char* sql, std::string_view context) {
  auto stmt = Stmt::Prepare(db, sql);
  if (!stmt) return Err(stmt.error().WithContext(context));
  auto row = stmt->Step();
  if (!row) return Err(row.error().WithContext(context));
  if (!*row) return Err(Status::Internal(std::string(context) + ": query returned no row"));
  return stmt->ColumnInt(0);
}

Result<WriteTransaction> WriteTransaction::Begin(sqlite3* db) {
  XNAI_RETURN_IF_ERROR(ExecScript(db, "BEGIN IMMEDIATE", "begin write transaction"));
  return WriteTransaction(db);
}

WriteTransaction::~WriteTransaction() {
  if (active_) RollbackIfActive(db_);
}

Status WriteTransaction::Commit() {
  Status s = ExecScript(db_, "COMMIT", "commit");
  if (s.ok()) active_ = false;
  return s;
}

void RollbackIfActive(sqlite3* db) {
  if (db != nullptr && sqlite3_get_autocommit(db) == 0) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

}  // namespace xnai::store::sqlite
