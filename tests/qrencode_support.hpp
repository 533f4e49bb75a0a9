// libqrencode as a test oracle: owning pointers for its objects and our level names in its terms.
// Shared by the suites that encode reference symbols with it (test_oracles, test_blind_reader).
#pragma once

#include <qrencode.h>

#include <memory>

#include "qrplate/qr.hpp"

namespace qrplate::oracle {

struct qrinput_free {
  void operator()(QRinput* p) const { QRinput_free(p); }
};
struct qrcode_free {
  void operator()(QRcode* p) const { QRcode_free(p); }
};
using qrinput_ptr = std::unique_ptr<QRinput, qrinput_free>;
using qrcode_ptr = std::unique_ptr<QRcode, qrcode_free>;

inline QRecLevel qrencode_level(ecc_level ecc)
{
  switch (ecc) {
    case ecc_level::L: return QR_ECLEVEL_L;
    case ecc_level::M: return QR_ECLEVEL_M;
    case ecc_level::Q: return QR_ECLEVEL_Q;
    default: return QR_ECLEVEL_H;
  }
}

}  // namespace qrplate::oracle
