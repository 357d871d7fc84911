// output: files that appear whole or not at all, written without harming what a path names.
//
// What writing PATH does, by what PATH is:
// - "-" is standard output, written as it is and never closed. So is a path that names the file
//   this process's standard output or error already writes to: `--json /dev/stdout > out.txt`
//   puts the report after the text in out.txt, where reopening out.txt would overwrite the text
//   and replacing it would lose it. A standard output that was closed when the process started
//   is refused (guard_standard_streams).
// - A terminal, pipe, FIFO or device (/dev/null, /dev/stdout on a terminal or a pipe) is opened
//   for writing and written in place: never created, truncated, replaced or removed. As with
//   `>`, a FIFO waits for its reader. A socket is refused.
// - A regular file, or a name that does not exist yet, gets its new content in an unnamed file
//   (O_TMPFILE) in the same directory. Until commit() nothing names it, so however the process
//   ends before (an error, a full disk, a signal, SIGKILL) the kernel frees it and nothing is
//   left. commit() links it (through /proc/self/fd) under a hidden name `.NAME.XXXXXXXX`, made
//   exclusively (never a file or a link that was already there), and renames that onto NAME, so
//   the name always shows the old content or all of the new.
// - Where the file system cannot make unnamed files (NFS, some FUSE file systems: EOPNOTSUPP),
//   the new content is written in the hidden `.NAME.XXXXXXXX` itself, made exclusively, and
//   renamed onto NAME at commit(). The same promises hold, except that a SIGKILL can leave that
//   hidden file behind (never a partial NAME).
// - A symbolic link is followed: the file it finally points to is replaced (its temporary goes
//   in that file's directory) and the link stays as it was. A link to nothing is refused rather
//   than creating a file somewhere the link's owner chose.
// - An existing file that a shell's `>` could not write is refused, even though a rename could
//   replace it: read-only by its mode or its file system, immutable or append-only (`chattr`).
//   Unless the program runs as root, so is another user's file, or one of a group the user is
//   not in: replacing it would change its owner.
// - The replaced file's permission bits, owner and group are kept; its set-user-ID,
//   set-group-ID and sticky bits, ACLs and extended attributes are not. A new file gets 0666
//   less the umask (or the directory's default ACL), like `>`.
// - A file with several hard links: only the name written gets the new content; its other names
//   keep the old file, as when an editor saves by renaming.
// - No fsync: the promise is against the program dying, not the machine losing power, and the
//   outputs can be made again by running again; flushing a gigabyte of tensors would add
//   seconds for a guarantee nothing here relies on.
// - A termination signal (SIGTERM, SIGINT, SIGHUP), once finish_commits_on_termination() has
//   installed the handlers, lets a commit in progress finish, removes the hidden files of the
//   fallback above, then ends the process by that signal. A SIGKILL in the microseconds of a
//   commit itself can leave a hidden `.NAME.XXXXXXXX` and, in a FileSet, some members renamed
//   into place and others not.
// Every check happens before anything is created: check_output_file and FileSet::check open
// and change nothing, so a run can refuse its outputs before it starts. Where permission bits
// cannot tell (root on /proc), they prove a directory can hold new entries by making a uniquely
// named, empty directory in it, exclusively, and removing it at once.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tp_mlp {

// Empty when `path` can be written by OutputFile, else a short reason ("it is empty", "it is a
// directory", "the directory x does not exist", "it is not writable (permission denied)", ...).
std::string check_output_file(const std::string& path);

// The absolute path `path` leads to, symbolic links resolved as far as it exists, "." and ".."
// resolved in the rest: two outputs with the same answer would write the same file.
std::string resolved_path(const std::string& path);

// A file being written that no one else can see yet (output.cpp's bookkeeping).
struct StagedFile {
  std::string path;       // as named, for messages
  std::string target;     // what it replaces or creates, links resolved; empty: written in place
  std::string temporary;  // its hidden name, while it has one
  int fd = -1;
};

class FileSet;

// One file, all or nothing: nothing at PATH changes until commit() (except in place, where
// there is nothing to replace). Errors throw std::runtime_error("PATH: reason").
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);  // refuses what check_output_file refuses
  ~OutputFile();                                 // drops the new content unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, std::size_t bytes);
  void commit();  // puts the new content at PATH; a set's member waits for the set's commit

 private:
  friend class FileSet;
  OutputFile(const std::string& path, FileSet* set);
  void discard() noexcept;

  StagedFile file_;
  bool owns_fd_ = true;  // standard output and error are written to, never closed
  FileSet* set_ = nullptr;
  bool committed_ = false;
};

// A directory of files that appear together at commit() or not at all (--save-tensors DIR).
// DIR and its missing parents are made only by commit(); until then a missing DIR's members are
// made in its nearest existing ancestor (on the same file system), so an abandoned or killed
// set leaves no directory either. Files in DIR that are not members are never touched,
// and a member that exists already is replaced only at commit(). Each member follows
// OutputFile's rules.
class FileSet {
 public:
  // Empty when `dir` can hold a set with these members, else a short reason: refuses "", what
  // is not a directory, a directory that cannot be created or written, members that
  // check_output_file refuses, and two members that are one file (a link to another member).
  // A missing `dir` is fine when its nearest existing ancestor is writable. Creates nothing.
  static std::string check(const std::string& dir, const std::vector<std::string>& names = {});

  explicit FileSet(const std::string& dir);  // refuses what check refuses
  ~FileSet();                                // unless committed, drops every member
  FileSet(const FileSet&) = delete;
  FileSet& operator=(const FileSet&) = delete;

  // A member named `name` in DIR; it must be committed, or destroyed, before the set is.
  OutputFile open(const std::string& name);
  // Makes the missing directories and gives every member a hidden name, then renames each onto
  // its own, with termination signals held off: a signal finds none of them or all. A failure
  // before the renames (a full directory, a quota) undoes all of it. Every member must have
  // been committed.
  void commit();

 private:
  friend class OutputFile;

  std::string dir_;                       // as named, for messages
  std::string ancestor_;                  // DIR's nearest existing ancestor, resolved
  std::vector<std::string> directories_;  // to make at commit, parents first
  std::vector<StagedFile> members_;       // committed by their OutputFile
  std::size_t unfinished_ = 0;            // members opened and not committed
  bool committed_ = false;
};

// Call before MPI starts. A standard output or error that is closed is opened on /dev/null, as
// glibc does for set-user-ID programs: what is printed there is discarded, as closing it asked,
// rather than written into whatever MPI would open under that number. "-" is then refused:
// the report would be lost.
void guard_standard_streams();

// Installs handlers for SIGTERM, SIGINT and SIGHUP that let a commit in progress finish, remove
// the fallback's hidden files, then end the process by the same signal. Call it once at
// start-up. A signal that is ignored (nohup) or already handled by someone else is left so.
void finish_commits_on_termination();

}  // namespace tp_mlp
