// npy: atomic files and the .npy 1.0 format (magic, version, header length, a Python dict).
#include "tp_mlp/npy.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tp_mlp {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, ".npy files are written as '<f4'");

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), temporary_(path_ + ".tmp") {
  file_ = std::fopen(temporary_.c_str(), "wb");
  if (!file_) throw std::runtime_error(temporary_ + ": " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (!file_) return;
  std::fclose(file_);
  std::remove(temporary_.c_str());
}

void AtomicFile::write(const void* data, std::size_t bytes) {
  if (std::fwrite(data, 1, bytes, file_) != bytes)
    throw std::runtime_error(temporary_ + ": " + std::strerror(errno));
}

void AtomicFile::commit() {
  bool ok = std::fflush(file_) == 0;
  ok = std::fclose(file_) == 0 && ok;
  file_ = nullptr;
  if (!ok || std::rename(temporary_.c_str(), path_.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(temporary_.c_str());
    throw std::runtime_error(path_ + ": " + why);
  }
}

NpyWriter::NpyWriter(const std::string& path, const std::vector<long>& shape) : file_(path) {
  std::string dims;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    dims += (i ? ", " : "") + std::to_string(shape[i]);
    expected_ *= shape[i];
  }
  if (shape.size() == 1) dims += ",";  // Python's one-element tuple
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // The format wants magic + version + length + header to end in '\n' on a 64-byte boundary.
  constexpr std::size_t kPreamble = 10, kAlignment = 64;
  std::size_t total = kPreamble + header.size() + 1;
  header.append((kAlignment - total % kAlignment) % kAlignment, ' ');
  header += '\n';
  const unsigned short length = static_cast<unsigned short>(header.size());
  file_.write("\x93NUMPY\x01\x00", 8);
  file_.write(&length, sizeof length);
  file_.write(header.data(), header.size());
}

void NpyWriter::append(const Matrix& rows) {
  file_.write(rows.data(), rows.size() * sizeof(float));
  written_ += rows.size();
}

void NpyWriter::commit() {
  if (written_ != expected_)
    throw std::logic_error("npy: wrote " + std::to_string(written_) + " of " +
                           std::to_string(expected_) + " elements");
  file_.commit();
}

void save_npy(const std::string& path, const Matrix& m, const std::vector<long>& shape) {
  NpyWriter npy(path, shape);
  npy.append(m);
  npy.commit();
}

}  // namespace tp_mlp
