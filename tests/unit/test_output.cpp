// Output files: nothing a path names is harmed, nothing half-written appears, nothing is left.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tp_mlp/output.hpp"
#include "tp_mlp/output_paths.hpp"

using namespace tp_mlp;
namespace fs = std::filesystem;

namespace {

// A fresh directory for one test, removed with everything in it.
class Scratch {
 public:
  Scratch() {
    std::string pattern = (fs::temp_directory_path() / "tp_mlp_output_XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp: cannot make a directory");
    path_ = pattern;
  }
  ~Scratch() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<std::string> listing(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void put(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void write_whole(OutputFile& file, const std::string& text) {
  file.write(text.data(), text.size());
  file.commit();
}

void write_whole(const fs::path& path, const std::string& text) {
  OutputFile file(path.string());
  write_whole(file, text);
}

struct stat status_of(const fs::path& path) {
  struct stat status {};
  lstat(path.c_str(), &status);
  return status;
}

// Sets or clears an inode flag as chattr does; false where the file system or the process's
// privileges (CAP_LINUX_IMMUTABLE) do not allow it.
bool set_flag(const fs::path& path, int flag, bool on) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool done = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (done) {
    flags = on ? flags | flag : flags & ~flag;
    done = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  close(fd);
  return done;
}

// An inode flag for the length of a scope: an immutable file left behind could not be removed.
class Flag {
 public:
  Flag(fs::path path, int flag) : path_(std::move(path)), flag_(flag) {
    set_ = set_flag(path_, flag_, true);
  }
  ~Flag() {
    if (set_) set_flag(path_, flag_, false);
  }
  Flag(const Flag&) = delete;
  Flag& operator=(const Flag&) = delete;
  bool set() const { return set_; }

 private:
  fs::path path_;
  int flag_;
  bool set_ = false;
};

// A 64 KiB tmpfs for the length of a scope, where the process may mount one (root).
class SmallFileSystem {
 public:
  explicit SmallFileSystem(fs::path at) : at_(std::move(at)) {
    fs::create_directory(at_);
    mounted_ = mount("tmpfs", at_.c_str(), "tmpfs", 0, "size=64k") == 0;
  }
  ~SmallFileSystem() {
    if (mounted_) umount(at_.c_str());
  }
  SmallFileSystem(const SmallFileSystem&) = delete;
  SmallFileSystem& operator=(const SmallFileSystem&) = delete;
  bool mounted() const { return mounted_; }
  bool make_read_only() {
    return mount("tmpfs", at_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=64k") == 0;
  }

 private:
  fs::path at_;
  bool mounted_ = false;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The names a reader would see: not the hidden ones (.NAME.XXXXXXXX).
std::vector<std::string> visible(const std::vector<std::string>& names) {
  std::vector<std::string> shown;
  for (const std::string& name : names)
    if (name[0] != '.') shown.push_back(name);
  return shown;
}

// Makes open(O_TMPFILE) fail with EOPNOTSUPP in this process, as on a file system without
// unnamed files (NFS), so that output.cpp's named fallback runs. Cannot be undone: for a child.
bool refuse_unnamed_files() {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_TMPFILE & ~O_DIRECTORY, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EOPNOTSUPP),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// The ways a file can be written here: unnamed, and (where seccomp lets a test refuse those)
// named, as on a file system without O_TMPFILE.
std::vector<bool> namings() {
  const pid_t child = fork();
  if (child == 0) {
    const bool refused = refuse_unnamed_files() &&
                         open("/tmp", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600) < 0 &&
                         errno == EOPNOTSUPP;
    _exit(refused ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {false, true};
  return {false};
}

// Runs `body` in a child process, named files only if `named`: exit 0 when it returns "", 1 with
// its message on stderr, 2 when it throws.
template <class Body>
int in_child(bool named, Body body) {
  const pid_t child = fork();
  if (child == 0) {
    if (named && !refuse_unnamed_files()) _exit(3);
    try {
      const std::string failure = body();
      if (!failure.empty()) std::fprintf(stderr, "in the child: %s\n", failure.c_str());
      _exit(failure.empty() ? 0 : 1);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "in the child: %s\n", e.what());
      _exit(2);
    }
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The body runs in a child process with the termination handlers installed (and named files
// only, if `named`); it calls say_ready() once it is in the middle of writing. Returns the
// child, ready or dead.
template <class Body>
pid_t start_child(Body body, int& ready, bool named = false) {
  int channel[2];
  if (pipe(channel) != 0) return -1;
  const pid_t child = fork();
  if (child == 0) {
    close(channel[0]);
    if (named && !refuse_unnamed_files()) _exit(4);
    finish_commits_on_termination();
    try {
      body(channel[1]);
    } catch (...) {
    }
    _exit(2);  // the body never returns when all goes well
  }
  close(channel[1]);
  ready = channel[0];
  return child;
}

void say_ready(int channel) {
  const char byte = 1;
  if (write(channel, &byte, 1) != 1) _exit(3);
}

void ready_then_wait(int channel) {
  say_ready(channel);
  for (;;) pause();
}

// Writes a mebibyte at a time, ready after the first, until killed (or 64 MiB, then waits).
void keep_writing(OutputFile& file, int channel) {
  const std::string mebibyte(std::size_t{1} << 20, 'z');
  for (int i = 0; i < 64; ++i) {
    file.write(mebibyte.data(), mebibyte.size());
    if (i == 0) say_ready(channel);
  }
  for (;;) pause();
}

bool became_ready(int ready) {
  char byte = 0;
  const bool yes = read(ready, &byte, 1) == 1;
  close(ready);
  return yes;
}

int stop(pid_t child, int signal) {
  kill(child, signal);
  int status = 0;
  waitpid(child, &status, 0);
  return status;
}

// A SIGKILL a few milliseconds into the child's writing, as Open MPI sends 20-80 ms after
// forwarding a SIGTERM to the ranks.
int kill_while_writing(pid_t child) {
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return stop(child, SIGKILL);
}

}  // namespace

// The reproduction: `PATH.tmp` was opened with a plain open, truncating what it named.
TEST(Output, ALinkWhereTheOldTemporaryWasIsNeverFollowed) {
  Scratch dir;
  put(dir / "v", "precious");
  fs::create_symlink("v", dir / "r.json.tmp");
  const fs::path report = dir / "r.json";
  EXPECT_EQ(check_output_file(report.string()), "");
  write_whole(report, "{}\n");
  EXPECT_EQ(slurp(dir / "v"), "precious");
  EXPECT_TRUE(fs::is_symlink(dir / "r.json.tmp"));
  EXPECT_EQ(slurp(report), "{}\n");
  EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"r.json", "r.json.tmp", "v"}));
}

TEST(Output, AUserFileNamedLikeATemporarySurvives) {
  Scratch dir;
  put(dir / "r.json.tmp", "mine");
  EXPECT_EQ(check_output_file((dir / "r.json").string()), "");
  write_whole(dir / "r.json", "{}\n");
  EXPECT_EQ(slurp(dir / "r.json.tmp"), "mine");
}

TEST(Output, ALinkStaysALinkAndItsFileGetsTheContent) {
  Scratch dir;
  fs::create_directory(dir / "elsewhere");
  put(dir / "elsewhere" / "real.json", "old");
  fs::create_symlink("elsewhere/real.json", dir / "link.json");
  write_whole(dir / "link.json", "new");
  EXPECT_TRUE(fs::is_symlink(dir / "link.json"));
  EXPECT_EQ(fs::read_symlink(dir / "link.json"), "elsewhere/real.json");
  EXPECT_EQ(slurp(dir / "elsewhere" / "real.json"), "new");
  // The temporary went next to the file, and is gone.
  EXPECT_EQ(listing(dir / "elsewhere"), std::vector<std::string>{"real.json"});
  EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"elsewhere", "link.json"}));
}

TEST(Output, ALinkToNothingIsRefusedAndCreatesNothing) {
  Scratch dir;
  fs::create_symlink("missing.json", dir / "link.json");
  EXPECT_EQ(check_output_file((dir / "link.json").string()), "it is a symbolic link to nothing");
  EXPECT_THROW(OutputFile((dir / "link.json").string()), std::runtime_error);
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"link.json"});
}

TEST(Output, DevNullIsWrittenInPlaceAndALinkToItStays) {
  Scratch dir;
  const struct stat before = status_of("/dev/null");
  ASSERT_TRUE(S_ISCHR(before.st_mode));
  EXPECT_EQ(check_output_file("/dev/null"), "");
  write_whole("/dev/null", "{}\n");
  fs::create_symlink("/dev/null", dir / "discard.json");
  write_whole(dir / "discard.json", "{}\n");
  const struct stat after = status_of("/dev/null");
  EXPECT_TRUE(S_ISCHR(after.st_mode));
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_rdev, before.st_rdev);
  EXPECT_TRUE(fs::is_symlink(dir / "discard.json"));
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"discard.json"});
}

// The reader opens without blocking first, so that the writer's open cannot block either and a
// FIFO wrongly replaced by a file fails the test instead of hanging it.
TEST(Output, AFifoIsWrittenInPlace) {
  Scratch dir;
  const fs::path fifo = dir / "pipe";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  write_whole(fifo, "through the fifo");
  char received[64] = {};
  const ssize_t bytes = read(reader, received, sizeof received);
  close(reader);
  EXPECT_EQ(std::string(received, std::max<ssize_t>(bytes, 0)), "through the fifo");
  EXPECT_TRUE(S_ISFIFO(status_of(fifo).st_mode));
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"pipe"});
}

TEST(Output, DashIsStandardOutputAndStaysOpen) {
  int channel[2];
  ASSERT_EQ(pipe(channel), 0);
  std::fflush(stdout);
  const int saved = dup(STDOUT_FILENO);
  dup2(channel[1], STDOUT_FILENO);
  close(channel[1]);
  EXPECT_EQ(check_output_file("-"), "");
  write_whole("-", "{\"to\": \"stdout\"}\n");
  const bool still_open = fcntl(STDOUT_FILENO, F_GETFD) != -1;
  dup2(saved, STDOUT_FILENO);  // also closes the pipe's last writer
  close(saved);
  char received[64] = {};
  const ssize_t bytes = read(channel[0], received, sizeof received);
  close(channel[0]);
  EXPECT_TRUE(still_open);
  EXPECT_EQ(std::string(received, std::max<ssize_t>(bytes, 0)), "{\"to\": \"stdout\"}\n");
}

// `--json /dev/stdout > out.txt`: the report follows the text in out.txt, which is neither
// replaced (the text would be lost) nor reopened at offset 0 (the text would be overwritten).
TEST(Output, DevStdoutOntoAFileAddsToIt) {
  Scratch dir;
  const fs::path out = dir / "out.txt";
  put(out, "the text report\n");
  const ino_t inode = status_of(out).st_ino;
  const int file = open(out.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(file, 0);
  std::fflush(stdout);
  const int saved = dup(STDOUT_FILENO);
  dup2(file, STDOUT_FILENO);
  close(file);
  const std::string why = check_output_file("/dev/stdout");
  write_whole("/dev/stdout", "{}\n");
  dup2(saved, STDOUT_FILENO);
  close(saved);
  EXPECT_EQ(why, "");
  EXPECT_EQ(slurp(out), "the text report\n{}\n");
  EXPECT_EQ(status_of(out).st_ino, inode);
  EXPECT_TRUE(S_ISLNK(status_of("/dev/stdout").st_mode));
}

TEST(Output, AReplacedFileKeepsItsModeAndOwnerAndANewOneFollowsTheUmask) {
  Scratch dir;
  const mode_t saved_umask = umask(077);
  put(dir / "shared.json", "old");
  chmod((dir / "shared.json").c_str(), 0604);
  const bool root = geteuid() == 0;
  if (root) {
    ASSERT_EQ(chown((dir / "shared.json").c_str(), 1234, 5678), 0);
  }
  write_whole(dir / "shared.json", "new");
  umask(022);
  write_whole(dir / "new.json", "{}");
  umask(saved_umask);
  const struct stat shared = status_of(dir / "shared.json");
  EXPECT_EQ(slurp(dir / "shared.json"), "new");
  EXPECT_EQ(shared.st_mode & 07777, 0604u);
  if (root) {
    EXPECT_EQ(shared.st_uid, 1234u);
    EXPECT_EQ(shared.st_gid, 5678u);
  }
  EXPECT_EQ(status_of(dir / "new.json").st_mode & 07777, 0644u);
}

TEST(Output, OnlyTheNameWrittenOfAHardLinkedFileChanges) {
  Scratch dir;
  put(dir / "a.json", "old");
  fs::create_hard_link(dir / "a.json", dir / "b.json");
  write_whole(dir / "a.json", "new");
  EXPECT_EQ(slurp(dir / "a.json"), "new");
  EXPECT_EQ(slurp(dir / "b.json"), "old");
}

TEST(Output, AnAbandonedFileLeavesTheOldOneAndNoTemporary) {
  Scratch dir;
  put(dir / "r.json", "old");
  try {
    OutputFile file((dir / "r.json").string());
    file.write("{\"half\":", 8);
    EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"r.json"});  // nothing shows yet
    throw std::runtime_error("the run failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"r.json"});
  EXPECT_EQ(slurp(dir / "r.json"), "old");
}

TEST(Output, AFullDiskLeavesTheOldFileAndNoTemporary) {
  Scratch dir;
  SmallFileSystem small(dir / "small");
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  const fs::path report = dir / "small" / "r.json";
  put(report, "old");
  {
    OutputFile file(report.string());
    const std::string megabyte(1 << 20, 'x');
    try {
      file.write(megabyte.data(), megabyte.size());
      ADD_FAILURE() << "a megabyte fitted in 64 KiB";
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(contains(e.what(), report.string() + ": No space left on device")) << e.what();
    }
  }
  EXPECT_EQ(listing(dir / "small"), std::vector<std::string>{"r.json"});
  EXPECT_EQ(slurp(report), "old");
}

TEST(Output, SigtermWhileWritingLeavesTheOldFileAndNoTemporary) {
  for (const bool named : namings()) {
    SCOPED_TRACE(named ? "named temporaries" : "unnamed files");
    Scratch dir;
    const fs::path report = dir / "r.json";
    put(report, "old");
    int ready = -1;
    const pid_t child = start_child(
        [&](int channel) {
          OutputFile file(report.string());
          file.write("{\"half\":", 8);
          ready_then_wait(channel);
        },
        ready, named);
    ASSERT_GT(child, 0);
    ASSERT_TRUE(became_ready(ready));
    // Named, the temporary is there for the handler to remove.
    EXPECT_EQ(listing(dir.path()).size(), named ? 2u : 1u);
    const int status = stop(child, SIGTERM);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "wait status " << status;
    EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"r.json"});
    EXPECT_EQ(slurp(report), "old");
  }
}

// What Ctrl-C at mpirun, or a SIGTERM to it, comes to: the rank writing is killed mid-write.
// Unnamed files leave nothing; named ones (no O_TMPFILE) may leave only hidden files.
TEST(Output, SigkillWhileWritingLeavesTheOldFileAndNothingElse) {
  for (const bool named : namings()) {
    SCOPED_TRACE(named ? "named temporaries" : "unnamed files");
    Scratch dir;
    const fs::path report = dir / "r.json";
    put(report, "old");
    int ready = -1;
    const pid_t child = start_child(
        [&](int channel) {
          OutputFile file(report.string());
          keep_writing(file, channel);
        },
        ready, named);
    ASSERT_GT(child, 0);
    ASSERT_TRUE(became_ready(ready));
    const int status = kill_while_writing(child);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
    const std::vector<std::string> left = listing(dir.path());
    EXPECT_EQ(named ? visible(left) : left, std::vector<std::string>{"r.json"});
    EXPECT_EQ(slurp(report), "old");
  }
}

// Before the process starts MPI, which would give a closed descriptor 1 to a file of its own.
TEST(Output, AClosedStandardOutputIsDiscardedAndDashIsRefused) {
  const int status = in_child(false, [] {
    close(STDOUT_FILENO);
    guard_standard_streams();
    struct stat out {};
    struct stat null {};
    if (fstat(STDOUT_FILENO, &out) != 0 || stat("/dev/null", &null) != 0 ||
        out.st_rdev != null.st_rdev)
      return std::string("standard output is not /dev/null");
    if (check_output_file("-") != "standard output is closed")
      return "check_output_file(\"-\") says '" + check_output_file("-") + "'";
    try {
      OutputFile report("-");
      return std::string("OutputFile(\"-\") was made");
    } catch (const std::runtime_error&) {
    }
    return check_output_file("/dev/null");
  });
  EXPECT_EQ(status, 0);
}

TEST(Output, RefusalsSayWhyAndCheckingCreatesNothing) {
  Scratch dir;
  fs::create_directory(dir / "sub");
  put(dir / "file", "x");
  const std::vector<std::string> before = listing(dir.path());
  EXPECT_EQ(check_output_file(""), "it is empty");
  EXPECT_EQ(check_output_file((dir / "sub").string()), "it is a directory");
  EXPECT_EQ(check_output_file((dir / "missing" / "r.json").string()),
            "the directory " + (dir / "missing").string() + " does not exist");
  EXPECT_EQ(check_output_file((dir / "file" / "r.json").string()),
            (dir / "file").string() + " is not a directory");
  EXPECT_EQ(check_output_file((dir / "new.json").string()), "");
  EXPECT_EQ(check_output_file((dir / "file").string()), "");
  EXPECT_THROW(OutputFile(""), std::runtime_error);
  EXPECT_THROW(OutputFile((dir / "sub").string()), std::runtime_error);
  EXPECT_EQ(listing(dir.path()), before);
  EXPECT_EQ(slurp(dir / "file"), "x");
}

TEST(Output, ReadOnlyByModeIsRefused) {
  if (geteuid() == 0)
    GTEST_SKIP() << "root ignores permission bits; ImmutableTargetsAreRefused and "
                    "AReadOnlyFileSystemIsRefused cover refusal as root";
  Scratch dir;
  fs::create_directory(dir / "locked");
  put(dir / "r.json", "old");
  chmod((dir / "r.json").c_str(), 0444);
  chmod((dir / "locked").c_str(), 0555);
  const std::string in_locked = check_output_file((dir / "locked" / "r.json").string());
  const std::string read_only = check_output_file((dir / "r.json").string());
  EXPECT_THROW(OutputFile((dir / "r.json").string()), std::runtime_error);
  chmod((dir / "locked").c_str(), 0755);
  EXPECT_EQ(in_locked, "cannot create files in " + fs::canonical(dir / "locked").string() +
                           " (permission denied)");
  EXPECT_EQ(read_only, "it is not writable (permission denied)");
  EXPECT_EQ(listing(dir / "locked"), std::vector<std::string>{});
  EXPECT_EQ(slurp(dir / "r.json"), "old");
}

TEST(Output, ImmutableTargetsAreRefused) {
  Scratch dir;
  put(dir / "r.json", "old");
  put(dir / "log.json", "old");
  fs::create_directory(dir / "frozen");
  Flag immutable_file(dir / "r.json", FS_IMMUTABLE_FL);
  Flag append_only_file(dir / "log.json", FS_APPEND_FL);
  Flag immutable_directory(dir / "frozen", FS_IMMUTABLE_FL);
  if (!immutable_file.set() || !append_only_file.set() || !immutable_directory.set())
    GTEST_SKIP() << "cannot set file attributes here (needs CAP_LINUX_IMMUTABLE and ext4 or "
                    "similar)";
  EXPECT_EQ(check_output_file((dir / "r.json").string()), "it is immutable");
  EXPECT_EQ(check_output_file((dir / "log.json").string()), "it is append-only");
  EXPECT_TRUE(contains(check_output_file((dir / "frozen" / "r.json").string()),
                       "frozen (it is immutable)"));
  EXPECT_TRUE(contains(FileSet::check((dir / "frozen" / "tensors").string()), "immutable"));
  EXPECT_THROW(OutputFile((dir / "r.json").string()), std::runtime_error);
  EXPECT_EQ(slurp(dir / "r.json"), "old");
  EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"frozen", "log.json", "r.json"}));
}

TEST(Output, AReadOnlyFileSystemIsRefused) {
  Scratch dir;
  SmallFileSystem small(dir / "ro");
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  put(dir / "ro" / "r.json", "old");
  ASSERT_TRUE(small.make_read_only());
  EXPECT_EQ(check_output_file((dir / "ro" / "r.json").string()),
            "it is not writable (read-only file system)");
  EXPECT_TRUE(
      contains(check_output_file((dir / "ro" / "new.json").string()), "(read-only file system)"));
  EXPECT_TRUE(contains(FileSet::check((dir / "ro" / "tensors").string()), "read-only"));
}

TEST(FileSet, ACommittedSetHasEveryMemberAndNoTemporary) {
  Scratch dir;
  const fs::path tensors = dir / "out" / "run";
  EXPECT_EQ(FileSet::check(tensors.string(), {"x.npy", "y.npy"}), "");
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{});  // checking made nothing
  FileSet set(tensors.string());
  for (const char* name : {"x.npy", "y.npy"}) {
    OutputFile member = set.open(name);
    write_whole(member, name);
  }
  const std::vector<std::string> before_commit = listing(dir.path());
  set.commit();
  EXPECT_EQ(before_commit, std::vector<std::string>{});  // not even the directories
  EXPECT_EQ(listing(tensors), (std::vector<std::string>{"x.npy", "y.npy"}));
  EXPECT_EQ(slurp(tensors / "x.npy"), "x.npy");
  EXPECT_EQ(slurp(tensors / "y.npy"), "y.npy");
}

TEST(FileSet, AnExistingDirectoryKeepsWhatIsNotAMemberAndMembersChangeOnlyAtCommit) {
  Scratch dir;
  put(dir / "notes.txt", "mine");
  put(dir / "x.npy", "old");
  FileSet set(dir.path().string());
  OutputFile x = set.open("x.npy");
  write_whole(x, "new");
  EXPECT_EQ(slurp(dir / "x.npy"), "old");
  set.commit();
  EXPECT_EQ(slurp(dir / "x.npy"), "new");
  EXPECT_EQ(slurp(dir / "notes.txt"), "mine");
  EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"notes.txt", "x.npy"}));
}

TEST(FileSet, AnAbandonedSetLeavesNothingItMadeAndEverythingElse) {
  Scratch dir;
  put(dir / "notes.txt", "mine");
  put(dir / "x.npy", "old");
  try {
    FileSet existing(dir.path().string());
    FileSet created((dir / "a" / "b" / "c").string());
    for (FileSet* set : {&existing, &created}) {
      OutputFile x = set->open("x.npy");
      write_whole(x, "new");
      OutputFile y = set->open("y.npy");
      y.write("half", 4);
    }
    EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"notes.txt", "x.npy"}));
    EXPECT_EQ(slurp(dir / "x.npy"), "old");
    throw std::runtime_error("the run failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"notes.txt", "x.npy"}));
  EXPECT_EQ(slurp(dir / "x.npy"), "old");
  EXPECT_EQ(slurp(dir / "notes.txt"), "mine");
}

TEST(FileSet, AnUncommittedMemberStopsTheSet) {
  Scratch dir;
  {
    FileSet set((dir / "run").string());
    { OutputFile member = set.open("x.npy"); }
    EXPECT_THROW(set.commit(), std::logic_error);
    EXPECT_FALSE(fs::exists(dir / "run" / "x.npy"));
  }
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{});
}

TEST(FileSet, AFullDiskLeavesNoPartialSet) {
  Scratch dir;
  SmallFileSystem small(dir / "small");
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  try {
    FileSet set((dir / "small" / "run").string());
    OutputFile x = set.open("x.npy");
    write_whole(x, "small");
    OutputFile y = set.open("y.npy");
    const std::string megabyte(1 << 20, 'y');
    y.write(megabyte.data(), megabyte.size());
    ADD_FAILURE() << "a megabyte fitted in 64 KiB";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(contains(e.what(), "y.npy: No space left on device")) << e.what();
  }
  EXPECT_EQ(listing(dir / "small"), std::vector<std::string>{});
}

TEST(FileSet, CheckRefusesAndCreatesNothing) {
  Scratch dir;
  put(dir / "file", "x");
  fs::create_directory(dir / "tensors");
  fs::create_directory(dir / "tensors" / "y.npy");
  fs::create_symlink("nowhere", dir / "dangling");
  const std::vector<std::string> before = listing(dir.path());
  EXPECT_EQ(FileSet::check(""), "it is empty");
  EXPECT_EQ(FileSet::check((dir / "file").string()), "it is not a directory");
  EXPECT_EQ(FileSet::check((dir / "file" / "sub").string()),
            (dir / "file").string() + " is not a directory");
  EXPECT_EQ(FileSet::check((dir / "dangling").string()), "it is a symbolic link to nothing");
  EXPECT_EQ(FileSet::check((dir / "tensors").string(), {"x.npy", "y.npy"}),
            "y.npy: it is a directory");
  EXPECT_EQ(FileSet::check((dir / "new" / "deeper").string(), {"x.npy"}), "");
  EXPECT_EQ(FileSet::check(dir.path().string() + "/new/deeper/"), "");
  EXPECT_THROW(FileSet((dir / "file").string()), std::runtime_error);
  EXPECT_EQ(listing(dir.path()), before);
  EXPECT_EQ(listing(dir / "tensors"), std::vector<std::string>{"y.npy"});
}

TEST(FileSet, SigtermWhileWritingLeavesNothingAndTheProcessDiesOfIt) {
  for (const bool named : namings()) {
    SCOPED_TRACE(named ? "named temporaries" : "unnamed files");
    Scratch dir;
    put(dir / "notes.txt", "mine");
    const fs::path tensors = dir / "run" / "deep";
    int ready = -1;
    const pid_t child = start_child(
        [&](int channel) {
          FileSet set(tensors.string());
          OutputFile x = set.open("x.npy");
          write_whole(x, "whole");
          OutputFile y = set.open("y.npy");
          y.write("half", 4);
          ready_then_wait(channel);
        },
        ready, named);
    ASSERT_GT(child, 0);
    ASSERT_TRUE(became_ready(ready));
    // Named, the temporaries wait in the nearest existing directory for the handler to remove.
    EXPECT_EQ(listing(dir.path()).size(), named ? 3u : 1u);
    const int status = stop(child, SIGTERM);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "wait status " << status;
    EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"notes.txt"});
  }
}

// Sets committed one after another until a SIGTERM, taken by another thread than the one
// committing (as one of MPI's would take it): a set's directory, made by its commit, holds every
// member or does not exist.
TEST(FileSet, SigtermDuringACommitLetsItFinish) {
  Scratch dir;
  constexpr int kMembers = 40;
  for (int round = 0; round < 8; ++round) {
    const fs::path sets = dir / std::to_string(round);
    int ready = -1;
    const pid_t child = start_child(
        [&](int channel) {
          std::thread([] {
            for (;;) pause();
          }).detach();
          sigset_t termination;
          sigemptyset(&termination);
          sigaddset(&termination, SIGTERM);
          pthread_sigmask(SIG_BLOCK, &termination, nullptr);
          say_ready(channel);
          for (int number = 0;; ++number) {
            FileSet set((sets / std::to_string(number)).string());
            for (int member = 0; member < kMembers; ++member) {
              OutputFile file = set.open(std::to_string(member));
              write_whole(file, "x");
            }
            set.commit();
          }
        },
        ready);
    ASSERT_GT(child, 0);
    ASSERT_TRUE(became_ready(ready));
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + 3 * round));
    const int status = stop(child, SIGTERM);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "wait status " << status;
    if (!fs::exists(sets)) continue;
    for (const std::string& set : listing(sets))
      EXPECT_EQ(listing(sets / set).size(), std::size_t{kMembers}) << "set " << set;
  }
}

// The run: `--save-tensors big` killed by Open MPI while rank 0 writes dw1.npy. One set
// goes into a directory that exists and holds an old member, one into a directory to be made.
TEST(FileSet, SigkillWhileWritingLeavesNothing) {
  for (const bool named : namings()) {
    SCOPED_TRACE(named ? "named temporaries" : "unnamed files");
    Scratch dir;
    put(dir / "notes.txt", "mine");
    fs::create_directory(dir / "old");
    put(dir / "old" / "x.npy", "old");
    int ready = -1;
    const pid_t child = start_child(
        [&](int channel) {
          FileSet existing((dir / "old").string());
          OutputFile x = existing.open("x.npy");
          write_whole(x, "new");
          FileSet created((dir / "big" / "run").string());
          OutputFile w = created.open("w1.npy");
          write_whole(w, "whole");
          OutputFile dw = created.open("dw1.npy");
          keep_writing(dw, channel);
        },
        ready, named);
    ASSERT_GT(child, 0);
    ASSERT_TRUE(became_ready(ready));
    const int status = kill_while_writing(child);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
    const std::vector<std::string> top = listing(dir.path()), old = listing(dir / "old");
    EXPECT_EQ(named ? visible(top) : top, (std::vector<std::string>{"notes.txt", "old"}));
    EXPECT_EQ(named ? visible(old) : old, std::vector<std::string>{"x.npy"});
    EXPECT_EQ(slurp(dir / "old" / "x.npy"), "old");
  }
}

// Where the file system has no O_TMPFILE, the hidden named files keep the promises: nothing
// shows before commit, everything at it, and the replaced file's mode is kept.
TEST(FileSet, WithoutUnnamedFilesASetStillAppearsWholeAtCommit) {
  if (namings().size() < 2) GTEST_SKIP() << "seccomp cannot refuse O_TMPFILE here";
  Scratch dir;
  put(dir / "r.json", "old");
  chmod((dir / "r.json").c_str(), 0640);
  const int status = in_child(true, [&] {
    FileSet set((dir / "new" / "run").string());
    for (const char* name : {"x.npy", "y.npy"}) {
      OutputFile member = set.open(name);
      write_whole(member, name);
    }
    OutputFile report((dir / "r.json").string());
    report.write("new", 3);
    if (visible(listing(dir.path())) != std::vector<std::string>{"r.json"})
      return std::string("something showed before commit");
    if (listing(dir.path()).size() != 4) return std::string("no named temporaries: not a fallback");
    report.commit();
    set.commit();
    return std::string();
  });
  EXPECT_EQ(status, 0);
  EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"new", "r.json"}));
  EXPECT_EQ(listing(dir / "new" / "run"), (std::vector<std::string>{"x.npy", "y.npy"}));
  EXPECT_EQ(slurp(dir / "new" / "run" / "y.npy"), "y.npy");
  EXPECT_EQ(slurp(dir / "r.json"), "new");
  EXPECT_EQ(status_of(dir / "r.json").st_mode & 07777, 0640u);
}

// The reproduction: w1.npy a link to w2.npy put W2's data in w1.npy, and exited 0.
TEST(FileSet, TwoMembersThatAreOneFileAreRefused) {
  Scratch dir;
  put(dir / "w2.npy", "o");
  put(dir / "x.npy", "o");
  fs::create_symlink("w2.npy", dir / "w1.npy");
  fs::create_symlink(dir / "x.npy", dir / "y.npy");
  const std::vector<std::string> before = listing(dir.path());
  EXPECT_EQ(FileSet::check(dir.path().string(), {"x.npy", "w1.npy", "w2.npy"}),
            "w1.npy and w2.npy are one file");
  EXPECT_EQ(FileSet::check(dir.path().string(), {"x.npy", "y.npy"}),
            "x.npy and y.npy are one file");
  // Made one file since the check: the commit refuses it and changes nothing.
  FileSet set(dir.path().string());
  for (const char* name : {"w1.npy", "w2.npy"}) {
    OutputFile member = set.open(name);
    write_whole(member, name);
  }
  EXPECT_THROW(set.commit(), std::runtime_error);
  EXPECT_EQ(listing(dir.path()), before);
  EXPECT_EQ(slurp(dir / "w2.npy"), "o");
}

TEST(OutputPaths, UnwritableOutputsAreRefused) {
  Config cfg;
  cfg.json_path = "/nonexistent-dir/report.json";
  EXPECT_NE(check_output_paths(cfg, {"x.npy"}).find("--json /nonexistent-dir/report.json"),
            std::string::npos);
  cfg.json_path.clear();
  cfg.tensors_dir = "/proc/tp_mlp";
  EXPECT_NE(check_output_paths(cfg, {"x.npy"}).find("--save-tensors /proc/tp_mlp"),
            std::string::npos);
}

// `--save-tensors same --json same` ran to the end, wrote the tensors, then lost the report.
TEST(OutputPaths, AReportWhereATensorOrItsDirectoryGoesIsRefused) {
  Scratch dir;
  fs::create_directory(dir / "d");
  put(dir / "d" / "x.npy", "o");
  fs::create_symlink(dir / "d" / "x.npy", dir / "link.json");
  const std::vector<std::string> before = listing(dir.path());
  auto refusal = [&](const std::string& tensors, const std::string& report) {
    Config cfg;
    cfg.tensors_dir = (dir / tensors).string();
    cfg.json_path = (dir / report).string();
    return check_output_paths(cfg, {"x.npy", "y.npy"});
  };
  EXPECT_PRED2(contains, refusal("same", "same"), "same is a directory of --save-tensors");
  EXPECT_PRED2(contains, refusal("a/b", "a"), "a is a directory of --save-tensors");
  EXPECT_PRED2(contains, refusal("d", "d/x.npy"), "x.npy is x.npy of --save-tensors");
  EXPECT_PRED2(contains, refusal("new", "new/y.npy"), "y.npy is y.npy of --save-tensors");
  EXPECT_PRED2(contains, refusal("d", "link.json"), "link.json is x.npy of --save-tensors");
  EXPECT_EQ(refusal("same", "same.json"), "");
  EXPECT_EQ(refusal("a/b", "a.json"), "");
  Config cfg;
  cfg.tensors_dir = (dir / "d").string();
  fs::create_symlink("x.npy", dir / "d" / "y.npy");
  EXPECT_EQ(
      check_output_paths(cfg, {"x.npy", "y.npy"}),
      "--save-tensors " + cfg.tensors_dir + ": cannot write there (x.npy and y.npy are one file)");
  fs::remove(dir / "d" / "y.npy");
  EXPECT_EQ(listing(dir.path()), before);
}
