// output: files that appear whole or not at all, written without harming what a path names.
//
// What writing PATH does, by what PATH is:
// - "-" is standard output, written as it is and never closed. So is a path that names the file
//   this process's standard output or error already writes to: `--json /dev/stdout > out.txt`
//   puts the report after the text in out.txt, where reopening out.txt would overwrite the text
//   and replacing it would lose it.
// - A terminal, pipe, FIFO or device (/dev/null, /dev/stdout on a terminal or a pipe) is opened
//   for writing and written in place: never created, truncated, replaced or removed. As with
//   `>`, a FIFO waits for its reader. A socket is refused.
// - A regular file, or a name that does not exist yet, gets its new content in a temporary file
//   in the same directory that is renamed onto the name once complete, so the name always shows
//   the old content or all of the new. The temporary is `.NAME.XXXXXXXX` with a random suffix,
//   created exclusively (O_CREAT|O_EXCL: it is never a file or a link that was already there),
//   private (0600) while it replaces an existing file, and the only file removed on failure.
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
// - No fsync: the promise is against the program dying (an error, a full disk, a signal), not
//   the machine losing power, and the outputs can be made again by running again; flushing a
//   gigabyte of tensors would add seconds for a guarantee nothing here relies on.
// - A termination signal (SIGTERM, SIGINT, SIGHUP) removes every temporary and every directory
//   a FileSet created, then ends the process by that signal, once
//   remove_temporaries_on_termination() has installed the handlers. SIGKILL cannot be caught:
//   it can leave `.NAME.XXXXXXXX` files behind, never a partial NAME.
// Every check happens before anything is created: check_output_file and FileSet::check open
// and change nothing, so a run can refuse its outputs before it starts. Where permission bits
// cannot tell (root on /proc), they prove a directory can hold new entries by making a uniquely
// named, empty directory in it, exclusively, and removing it at once.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <sys/types.h>

namespace tp_mlp {

// Empty when `path` can be written by OutputFile, else a short reason ("it is empty", "it is a
// directory", "the directory x does not exist", "it is not writable (permission denied)", ...).
std::string check_output_file(const std::string& path);

class FileSet;

// One file, all or nothing: nothing at PATH changes until commit() (except in place, where
// there is nothing to replace). Errors throw std::runtime_error("PATH: reason").
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);  // refuses what check_output_file refuses
  ~OutputFile();                                 // removes the temporary unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, std::size_t bytes);
  void commit();  // closes and renames onto PATH; a set's member waits for the set's commit

 private:
  friend class FileSet;
  OutputFile(const std::string& path, FileSet* set);
  void close_checked();  // gives the replacement the replaced file's mode and owner, closes
  void discard() noexcept;

  std::string path_;       // as named, for messages
  std::string target_;     // what the temporary is renamed onto, links resolved
  std::string temporary_;  // ours to rename or remove (a set's member leaves it to the set)
  int fd_ = -1;
  bool owns_fd_ = true;    // standard output and error are written to, never closed
  bool replaces_ = false;  // an existing file, whose mode and owner the new one keeps
  mode_t mode_ = 0;
  uid_t owner_ = 0;
  gid_t group_ = 0;
  FileSet* set_ = nullptr;
  std::size_t member_ = 0;
  bool committed_ = false;
};

// A directory of files that appear together at commit() or not at all (--save-tensors DIR).
// DIR and its missing parents are made when the set is constructed and removed again, if still
// empty, when it is abandoned; files in DIR that are not members are never touched, and a member
// that exists already is replaced only at commit(). Each member follows OutputFile's rules.
class FileSet {
 public:
  // Empty when `dir` can hold a set with these members, else a short reason: refuses "", what
  // is not a directory, a directory that cannot be created or written, and members that
  // check_output_file refuses. A missing `dir` is fine when its nearest existing ancestor is
  // writable. Creates nothing.
  static std::string check(const std::string& dir, const std::vector<std::string>& names = {});

  explicit FileSet(const std::string& dir);  // refuses what check refuses; makes the directories
  ~FileSet();  // unless committed: removes every temporary, then the directories it made
  FileSet(const FileSet&) = delete;
  FileSet& operator=(const FileSet&) = delete;

  // A member named `name` in DIR; it must be committed, or destroyed, before the set is.
  OutputFile open(const std::string& name);
  // Renames every member into place with termination signals held off, so that a signal finds
  // either none of them or all of them. Every member must have been committed.
  void commit();

 private:
  friend class OutputFile;
  struct Member {
    std::string name, temporary, target;  // no temporary: written in place
    bool complete = false;
  };
  void remove_what_we_made() noexcept;

  std::string dir_;
  std::vector<std::string> created_;  // parents first
  std::vector<Member> members_;
  bool committed_ = false;
};

// Installs handlers for SIGTERM, SIGINT and SIGHUP that remove every temporary file and every
// directory a FileSet created, then end the process by the same signal. Call it once at
// start-up. A signal that is ignored (nohup) or already handled by someone else is left so.
void remove_temporaries_on_termination();

}  // namespace tp_mlp
