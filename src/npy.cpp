// npy: the .npy 1.0 format (magic, version, header length, a Python dict).
#include "tp_mlp/npy.hpp"

#include <stdexcept>

namespace tp_mlp {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, ".npy files are written as '<f4'");

NpyWriter::NpyWriter(const std::string& path, const std::vector<long>& shape) : file_(path) {
  write_header(shape);
}

NpyWriter::NpyWriter(FileSet& set, const std::string& name, const std::vector<long>& shape)
    : file_(set.open(name)) {
  write_header(shape);
}

void NpyWriter::write_header(const std::vector<long>& shape) {
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

void NpyWriter::append(const ConstMatrixRef& rows) {
  if (rows.outerStride() == rows.cols()) {
    file_.write(rows.data(), std::size_t(rows.size()) * sizeof(float));
  } else {  // a view of rows of a wider matrix: a row at a time
    for (long r = 0; r < rows.rows(); ++r)
      file_.write(rows.row(r).data(), std::size_t(rows.cols()) * sizeof(float));
  }
  written_ += rows.size();
}

void NpyWriter::commit() {
  if (written_ != expected_)
    throw std::logic_error("npy: wrote " + std::to_string(written_) + " of " +
                           std::to_string(expected_) + " elements");
  file_.commit();
}

void save_npy(const std::string& path, const ConstMatrixRef& m, const std::vector<long>& shape) {
  NpyWriter npy(path, shape);
  npy.append(m);
  npy.commit();
}

void save_npy(FileSet& set, const std::string& name, const ConstMatrixRef& m,
              const std::vector<long>& shape) {
  NpyWriter npy(set, name, shape);
  npy.append(m);
  npy.commit();
}

}  // namespace tp_mlp
