//! CLIP: the vision tower of Hugging Face CLIP checkpoints on the accelerator
//! (`shiftkit clip embed`). The tower itself is `nn::vit::VisionTower`; this module loads
//! checkpoints into it (`checkpoint`) and embeds images with it (`embed`).

pub mod checkpoint;
pub mod embed;
