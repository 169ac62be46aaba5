//! CLIP: the vision tower of Hugging Face CLIP checkpoints on the accelerator
//! (`shiftkit clip embed`), and a mini CLIP pretrained on captioned digits
//! (`shiftkit train clip-pretrain`). The towers are `nn::vit::VisionTower` and
//! `nn::text::TextTower`; this module loads and saves checkpoints (`checkpoint`, `model`),
//! embeds images (`embed`), captions digits (`captions`) and pretrains (`pretrain`).

pub mod captions;
pub mod checkpoint;
pub mod demo;
pub mod detect;
pub mod embed;
pub mod model;
pub mod pretrain;
pub mod sphere;
