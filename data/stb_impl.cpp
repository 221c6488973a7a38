// The one translation unit that compiles stb's image decoder and encoder from Debian's
// libstb-dev headers (so no libstb to link). Kept apart from image_codec.cpp so that stb's own
// warnings are silenced here without hiding any in our code.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// stb copies zero bytes from or to a null pointer (a PNG whose first IDAT chunk is empty),
// which C leaves undefined and UBSan reports; every copy in stb goes through this instead.
#include <cstring>
static void* stb_memcpy(void* to, const void* from, size_t n) { return n ? std::memcpy(to, from, n) : to; }
#define memcpy stb_memcpy
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
// Only the formats the folder reader accepts (its file names: .png .jpg .jpeg .bmp): stb's
// GIF, PSD, PIC, TGA, HDR and PNM decoders would otherwise run on any file whose bytes look
// like one, and fuzzing shows Debian's stb (2022) is not hardened against hostile files.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
// Bounds what a header can make stb allocate (16384^2 x 4 bytes = 1 GiB at most);
// image_codec.cpp rejects more than kMaxImagePixels before decoding anyway.
#define STBI_MAX_DIMENSIONS (1 << 14)
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#undef memcpy
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
