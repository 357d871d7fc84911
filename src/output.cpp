// output: unnamed files linked into place only when whole, termination signals held off while
// names change, and the checks that refuse a path before anything is written (rules in
// output.hpp).
#include "tp_mlp/output.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tp_mlp {
namespace {

[[noreturn]] void fail(const std::string& path, int error) {
  throw std::runtime_error(path + ": " + std::strerror(error));
}

// strerror's text as part of a sentence: "permission denied".
std::string reason(int error) {
  std::string text = std::strerror(error);
  if (!text.empty()) text[0] = char(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// dirname(3) on a copy.
std::string parent_of(const std::string& path) {
  std::string parent = without_trailing_slashes(path);
  const std::size_t slash = parent.rfind('/');
  if (slash == std::string::npos) return ".";
  parent.resize(slash);
  return parent.empty() ? "/" : without_trailing_slashes(parent);
}

std::string name_of(const std::string& path) {
  const std::string trimmed = without_trailing_slashes(path);
  return trimmed.substr(trimmed.rfind('/') + 1);
}

std::string join(const std::string& directory, const std::string& name) {
  return directory.back() == '/' ? directory + name : directory + "/" + name;
}

// ---- Termination signals wait while names change.
//
// A commit renames files one after another; a SIGTERM in the middle would leave some. Blocking
// the signals in the committing thread is not enough, as another thread (MPI starts some) can
// take them, so the handler defers instead: while a Held section is open it leaves the signal
// to the section's end. Acting on it means removing the fallback's named temporaries (a handler
// may not allocate, so their names live in a fixed table that only Held sections change) and
// ending the process by the signal.
constexpr int kIdle = 0, kHeld = -1, kEnding = -2;  // or the signal a Held section must act on
std::atomic<int> state{kIdle};
std::mutex sections;  // one Held section at a time; the handler never takes it
char named_temporaries[64][PATH_MAX];
constexpr int kTerminationSignals[] = {SIGTERM, SIGINT, SIGHUP};

void remove_named_temporaries_and_end(int signal) {
  for (const char* name : named_temporaries)
    if (name[0] != '\0') unlink(name);
  std::signal(signal, SIG_DFL);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signal);
  pthread_sigmask(SIG_UNBLOCK, &only, nullptr);  // a handler runs with its signal blocked
  raise(signal);
}

void on_termination(int signal) {
  int now = state.load();
  while (now == kIdle || now == kHeld) {
    const int next = now == kIdle ? kEnding : signal;
    if (state.compare_exchange_weak(now, next)) {
      if (next == kEnding) remove_named_temporaries_and_end(signal);
      return;
    }
  }
  // Ending already, or a signal already waits for the section's end.
}

// Sections never nest: one opened in a thread that holds one would wait for itself.
class Held {
 public:
  Held() : lock_(sections) {
    int idle = kIdle;
    if (!state.compare_exchange_strong(idle, kHeld))
      for (;;) pause();  // a handler is ending the process
  }
  ~Held() {
    int held = kHeld;
    if (!state.compare_exchange_strong(held, kIdle)) remove_named_temporaries_and_end(held);
  }
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;

 private:
  std::lock_guard<std::mutex> lock_;
};

// Found before the file is made, so that recording it cannot fail once it exists.
char* free_entry(const std::string& path) {
  if (path.size() >= PATH_MAX) fail(path, ENAMETOOLONG);
  for (char* entry : named_temporaries)
    if (entry[0] == '\0') return entry;
  throw std::runtime_error(path + ": too many files being written at once");
}

void forget(const std::string& path) {
  for (char* entry : named_temporaries)
    if (path == entry) entry[0] = '\0';
}

// ---- What a path names, and whether it may be written.

enum class Kind { standard_stream, in_place, replace };

struct Target {
  Kind kind = Kind::replace;
  int fd = -1;            // the standard stream
  std::string file;       // written in place, or replaced; symbolic links resolved
  std::string directory;  // where the replacement is made
  bool exists = false;    // and is `old`
  struct stat old {};
};

bool standard_output_closed = false;  // when the process started

// The immutable and append-only attributes, which stop a rename even by root.
std::string attribute_problem(const std::string& path) {
  struct statx attributes;
  if (statx(AT_FDCWD, path.c_str(), 0, STATX_BASIC_STATS, &attributes) != 0) return "";
  const auto set = attributes.stx_attributes & attributes.stx_attributes_mask;
  if (set & STATX_ATTR_IMMUTABLE) return "it is immutable";
  if (set & STATX_ATTR_APPEND) return "it is append-only";
  return "";
}

// `what` is "files" or "directories", as the message should say.
std::string directory_problem(const std::string& directory, const char* what) {
  std::string why = attribute_problem(directory);
  if (why.empty() && access(directory.c_str(), W_OK | X_OK) != 0) why = reason(errno);
  // Permission bits do not tell everything (root passes access() on /proc, where nothing can be
  // created): create something there. An unnamed file (O_TMPFILE) leaves nothing behind
  // whatever stops the process; where the file system has none, a uniquely named, empty
  // directory, removed at once (a SIGKILL between the two would leave it).
  if (why.empty()) {
    const int probe_fd = open(directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (probe_fd >= 0) {
      close(probe_fd);
    } else if (errno != EOPNOTSUPP && errno != EISDIR) {
      why = reason(errno);
    } else {
      std::string probe = join(directory, ".tp_mlp-probe.XXXXXX");
      if (mkdtemp(probe.data()) == nullptr)
        why = reason(errno);
      else
        rmdir(probe.c_str());
    }
  }
  return why.empty() ? ""
                     : std::string("cannot create ") + what + " in " + directory + " (" + why + ")";
}

bool in_group(gid_t group) {
  if (group == getegid()) return true;
  std::vector<gid_t> groups(std::max(getgroups(0, nullptr), 0));
  const int count = getgroups(int(groups.size()), groups.data());
  for (int i = 0; i < count; ++i)
    if (groups[i] == group) return true;
  return false;
}

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::string find_new_file(const std::string& path, Target& target) {
  if (path.back() == '/') return "it names a directory";
  const std::string parent = parent_of(path);
  struct stat status;
  if (stat(parent.c_str(), &status) != 0)
    return errno == ENOENT ? "the directory " + parent + " does not exist"
                           : parent + ": " + reason(errno);
  if (!S_ISDIR(status.st_mode)) return parent + " is not a directory";
  char resolved[PATH_MAX];
  if (!realpath(parent.c_str(), resolved)) return parent + ": " + reason(errno);
  target.directory = resolved;
  target.file = join(target.directory, name_of(path));
  return directory_problem(target.directory, "files");
}

std::string find_existing_file(const std::string& path, const struct stat& status, Target& target) {
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) return reason(errno);
  target.file = resolved;
  target.directory = parent_of(target.file);
  target.exists = true;
  target.old = status;
  if (std::string why = attribute_problem(target.file); !why.empty()) return why;
  if (access(target.file.c_str(), W_OK) != 0) return "it is not writable (" + reason(errno) + ")";
  if (geteuid() != 0 && status.st_uid != geteuid()) return "it belongs to another user";
  if (geteuid() != 0 && !in_group(status.st_gid)) return "it belongs to a group you are not in";
  return directory_problem(target.directory, "files");
}

// What writing `path` would touch, or why it must not be written. Opens nothing.
std::string find_target(const std::string& path, Target& target) {
  if (path.empty()) return "it is empty";
  struct stat status;
  if (path == "-") {
    target.kind = Kind::standard_stream;
    target.fd = STDOUT_FILENO;
    const bool open = !standard_output_closed && fstat(STDOUT_FILENO, &status) == 0;
    return open ? "" : "standard output is closed";
  }
  if (stat(path.c_str(), &status) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) return reason(errno);
    if (lstat(path.c_str(), &status) == 0) return "it is a symbolic link to nothing";
    return find_new_file(path, target);
  }
  if (S_ISDIR(status.st_mode)) return "it is a directory";
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    struct stat standard;
    if (fstat(fd, &standard) == 0 && same_file(standard, status)) {
      target.kind = Kind::standard_stream;
      target.fd = fd;
      return "";
    }
  }
  if (S_ISSOCK(status.st_mode)) return "it is a socket";
  if (S_ISREG(status.st_mode)) return find_existing_file(path, status, target);
  target.kind = Kind::in_place;
  target.file = path;
  return access(path.c_str(), W_OK) == 0 ? "" : "it is not writable (" + reason(errno) + ")";
}

// ---- The new content's file, and its way into place.

std::string random_suffix() {
  static constexpr char kLetters[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char bytes[8];
  if (getrandom(bytes, sizeof bytes, 0) != sizeof bytes) fail("getrandom", errno);
  std::string suffix;
  for (unsigned char byte : bytes) suffix += kLetters[byte % (sizeof kLetters - 1)];
  return suffix;
}

// A new hidden name `.NAME.XXXXXXXX` in `directory`, given by `make`, which returns 0 or the
// errno of its failure: EEXIST for a name that is taken, which is passed over, never touched.
template <class Make>
std::string make_hidden(const std::string& directory, const std::string& file,
                        const std::string& path, Make make) {
  constexpr std::size_t kNameKept = 200;  // .NAME.XXXXXXXX must fit in NAME_MAX, 255
  const std::string prefix = "." + name_of(file).substr(0, kNameKept) + ".";
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = join(directory, prefix + random_suffix());
    const int error = make(name);
    if (error == 0) return name;
    if (error != EEXIST) fail(path, error);
  }
  throw std::runtime_error(path + ": no unused temporary name in " + directory);
}

// Unnamed (O_TMPFILE) where the file system allows: nothing can leave it behind. Elsewhere a
// hidden name, created exclusively (O_EXCL refuses any existing file, a symbolic link included)
// and recorded for the termination handler. A replacement is private (0600) until it takes the
// old file's mode; a new file is 0666 for the umask or the directory's default ACL to restrict,
// as `>` would.
int open_temporary(const Target& target, const std::string& path, std::string& named) {
  const mode_t mode = target.exists ? 0600 : 0666;
  int fd = open(target.directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {  // EISDIR: a kernel before 3.11
    named = make_hidden(target.directory, target.file, path, [&](const std::string& name) {
      Held held;
      char* entry = free_entry(name);
      fd = open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
      if (fd < 0) return errno;
      std::memcpy(entry, name.c_str(), name.size() + 1);
      return 0;
    });
  }
  if (fd < 0) fail(path, errno);
  return fd;
}

// Kept from the replaced file: its permission bits, owner and group.
void take_mode_and_owner(int fd, const struct stat& old, const std::string& path) {
  struct stat status;
  if (fstat(fd, &status) != 0) fail(path, errno);
  if ((status.st_uid != old.st_uid || status.st_gid != old.st_gid) &&
      fchown(fd, old.st_uid, old.st_gid) != 0)
    fail(path, errno);
  if (fchmod(fd, old.st_mode & 0777) != 0) fail(path, errno);
}

// A name for an unnamed file, beside its target: linkat through /proc, which needs no privilege.
std::string link_hidden(const StagedFile& file) {
  char self[32];
  std::snprintf(self, sizeof self, "/proc/self/fd/%d", file.fd);
  return make_hidden(parent_of(file.target), file.target, file.path, [&](const std::string& name) {
    return linkat(AT_FDCWD, self, AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
  });
}

// Closes the file and removes its hidden name, if it has one; in a Held section when it has.
void remove(StagedFile& file) noexcept {
  if (file.fd >= 0) close(file.fd);
  file.fd = -1;
  if (file.temporary.empty()) return;
  unlink(file.temporary.c_str());
  forget(file.temporary);
  file.temporary.clear();
}

void abandon(StagedFile& file) noexcept {
  Held held;
  remove(file);
}

// Gives every file its target's name, with termination signals held off. First the missing
// `directories`, a hidden name for each unnamed file and a checked close (where a network file
// system reports a failed write), then the renames: a failure before them undoes everything
// and changes nothing visible.
void publish(std::vector<StagedFile>& files, const std::vector<std::string>& directories) {
  Held held;
  std::vector<std::string> made;
  try {
    for (const std::string& directory : directories) {
      if (mkdir(directory.c_str(), 0777) == 0)
        made.push_back(directory);
      else if (errno != EEXIST)  // made meanwhile by someone else: theirs, not ours
        fail(directory, errno);
    }
    for (StagedFile& file : files) {
      if (file.temporary.empty()) file.temporary = link_hidden(file);
      if (close(std::exchange(file.fd, -1)) != 0) fail(file.path, errno);
    }
    for (StagedFile& file : files) {
      if (std::rename(file.temporary.c_str(), file.target.c_str()) != 0) fail(file.path, errno);
      forget(file.temporary);
      file.temporary.clear();
    }
  } catch (...) {
    for (StagedFile& file : files) remove(file);
    for (auto directory = made.rbegin(); directory != made.rend(); ++directory)
      rmdir(directory->c_str());  // only if empty: what is in it stays, and so does it
    throw;
  }
}

}  // namespace

std::string check_output_file(const std::string& path) {
  Target target;
  return find_target(path, target);
}

std::string resolved_path(const std::string& path) {
  std::error_code error;  // on an error, the path as written: at worst a match goes unnoticed
  std::filesystem::path resolved = std::filesystem::absolute(without_trailing_slashes(path), error);
  if (!error) resolved = std::filesystem::weakly_canonical(resolved, error);
  return error ? path : resolved.string();
}

OutputFile::OutputFile(const std::string& path) : OutputFile(path, nullptr) {}

OutputFile::OutputFile(const std::string& path, FileSet* set) : set_(set) {
  file_.path = path;
  Target target;
  if (set_ && !set_->directories_.empty()) {  // a new file in a directory made at commit
    target.file = join(set_->directories_.back(), name_of(path));
    target.directory = set_->ancestor_;
  } else if (const std::string why = find_target(path, target); !why.empty()) {
    throw std::runtime_error(path + ": " + why);
  }
  try {
    switch (target.kind) {
      case Kind::standard_stream:
        std::fflush(target.fd == STDOUT_FILENO ? stdout : stderr);  // text printed so far first
        file_.fd = target.fd;
        owns_fd_ = false;
        break;
      case Kind::in_place: {
        file_.fd = open(target.file.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (file_.fd < 0) fail(path, errno);
        struct stat status;
        // A regular file swapped in since the check would be overwritten instead of replaced.
        if (fstat(file_.fd, &status) != 0 || S_ISREG(status.st_mode))
          throw std::runtime_error(path + ": it changed while being opened");
        break;
      }
      case Kind::replace:
        file_.fd = open_temporary(target, path, file_.temporary);
        file_.target = target.file;
        if (target.exists) take_mode_and_owner(file_.fd, target.old, path);
        break;
    }
  } catch (...) {
    discard();
    throw;
  }
  if (set_) ++set_->unfinished_;
}

OutputFile::~OutputFile() { discard(); }

// NOLINTNEXTLINE(readability-make-member-function-const): it changes the file, if not *this
void OutputFile::write(const void* data, std::size_t bytes) {
  if (committed_ || file_.fd < 0) throw std::logic_error(file_.path + ": written after commit");
  const char* next = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(file_.fd, next, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      fail(file_.path, errno);
    }
    next += written;
    bytes -= std::size_t(written);
  }
}

void OutputFile::commit() {
  if (committed_ || file_.fd < 0) throw std::logic_error(file_.path + ": committed twice");
  committed_ = true;
  if (set_) --set_->unfinished_;
  if (file_.target.empty()) {  // written in place: done once closed
    const int fd = std::exchange(file_.fd, -1);
    // Where a full disk or a network file system reports the last write's failure.
    if (owns_fd_ && close(fd) != 0) fail(file_.path, errno);
    return;
  }
  if (set_) {
    set_->members_.push_back(std::exchange(file_, {}));
    return;
  }
  std::vector<StagedFile> alone;
  alone.push_back(std::exchange(file_, {}));
  publish(alone, {});
}

void OutputFile::discard() noexcept {
  if (!owns_fd_) file_.fd = -1;
  abandon(file_);
}

std::string FileSet::check(const std::string& dir, const std::vector<std::string>& names) {
  if (dir.empty()) return "it is empty";
  struct stat status;
  if (stat(dir.c_str(), &status) == 0) {
    if (!S_ISDIR(status.st_mode)) return "it is not a directory";
    if (std::string why = directory_problem(dir, "files"); !why.empty()) return why;
    std::vector<std::string> files;
    for (const std::string& name : names) {
      const std::string path = join(dir, name);
      if (std::string why = check_output_file(path); !why.empty())
        return why.insert(0, name + ": ");
      files.push_back(resolved_path(path));
      for (std::size_t other = 0; other + 1 < files.size(); ++other)
        if (files[other] == files.back()) return names[other] + " and " + name + " are one file";
    }
    return "";
  }
  if (errno != ENOENT && errno != ENOTDIR) return reason(errno);
  if (lstat(dir.c_str(), &status) == 0) return "it is a symbolic link to nothing";
  for (std::string ancestor = parent_of(dir);; ancestor = parent_of(ancestor)) {
    if (stat(ancestor.c_str(), &status) == 0)
      return S_ISDIR(status.st_mode) ? directory_problem(ancestor, "directories")
                                     : ancestor + " is not a directory";
    const int error = errno;
    if ((error != ENOENT && error != ENOTDIR) || ancestor == parent_of(ancestor))
      return ancestor + ": " + reason(error);
    if (lstat(ancestor.c_str(), &status) == 0) return ancestor + " is a symbolic link to nothing";
  }
}

FileSet::FileSet(const std::string& dir) : dir_(dir) {
  if (const std::string why = check(dir); !why.empty()) throw std::runtime_error(dir + ": " + why);
  std::vector<std::string> missing;  // deepest first
  std::string existing = dir;
  struct stat status;
  for (; stat(existing.c_str(), &status) != 0; existing = parent_of(existing))
    missing.push_back(name_of(existing));
  char resolved[PATH_MAX];
  if (!realpath(existing.c_str(), resolved)) fail(dir, errno);
  ancestor_ = resolved;
  for (auto name = missing.rbegin(); name != missing.rend(); ++name)
    directories_.push_back(join(directories_.empty() ? ancestor_ : directories_.back(), *name));
}

FileSet::~FileSet() {
  for (StagedFile& member : members_) abandon(member);
}

OutputFile FileSet::open(const std::string& name) {
  if (committed_) throw std::logic_error(dir_ + ": opened after commit");
  return OutputFile(join(dir_, name), this);
}

void FileSet::commit() {
  if (committed_) throw std::logic_error(dir_ + ": committed twice");
  if (unfinished_ != 0)
    throw std::logic_error(dir_ + ": a member was not committed before the set");
  // Checked before the run, but the directory may have changed since.
  for (auto member = members_.begin(); member != members_.end(); ++member)
    for (auto other = members_.begin(); other != member; ++other)
      if (other->target == member->target)
        throw std::runtime_error(other->path + " and " + member->path + " are one file");
  publish(members_, directories_);
  committed_ = true;
}

void guard_standard_streams() {
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    if (fcntl(fd, F_GETFD) != -1) continue;
    if (fd == STDOUT_FILENO) standard_output_closed = true;
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0 && null != fd) {  // a closed standard input took the lowest number
      dup2(null, fd);
      close(null);
    }
  }
}

void finish_commits_on_termination() {
  struct sigaction action {};
  action.sa_handler = on_termination;
  sigemptyset(&action.sa_mask);
  for (int signal : kTerminationSignals) sigaddset(&action.sa_mask, signal);  // one at a time
  for (int signal : kTerminationSignals) {
    struct sigaction current {};
    sigaction(signal, nullptr, &current);
    if (current.sa_handler == SIG_DFL) sigaction(signal, &action, nullptr);
  }
}

}  // namespace tp_mlp
