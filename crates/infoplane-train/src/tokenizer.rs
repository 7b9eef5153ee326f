//! A byte-level BPE tokenizer trained on the training documents, laid out like Llama 3's:
//! GPT-2's byte-level pre-tokenizer (regex split, no prefix space), a BPE model over the 256 byte
//! symbols plus merges, and a post-processor that puts a BOS token before every document (so any
//! loader that encodes with `add_special_tokens = true` gets the BOS the model was trained with).
//!
//! Training is deterministic: the BPE trainer breaks count ties by token ids, and the byte alphabet
//! is fixed and sorted (checked by a test that trains twice and compares the JSON).

use crate::error::TrainError;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, Tokenizer};

/// The BOS token, id 0, prepended to every document.
pub const BOS_TOKEN: &str = "<|bos|>";
/// Token ids that are not merges: the BOS token and the 256 byte symbols.
pub const RESERVED_TOKENS: usize = 1 + 256;

/// Trains a byte-level BPE tokenizer of at most `vocab_size` tokens (BOS and the 256 bytes
/// included) on `docs`. The result may hold fewer tokens when the text has too few distinct pairs:
/// use `get_vocab_size(true)` as the model's vocabulary size.
pub fn train_tokenizer<S: AsRef<str> + Sync>(docs: &[S], vocab_size: usize) -> Result<Tokenizer, TrainError> {
    if vocab_size <= RESERVED_TOKENS {
        return Err(TrainError::setting(
            "vocab-size",
            format!("{vocab_size} leaves no room for merges: a byte-level tokenizer needs {RESERVED_TOKENS} tokens (BOS + 256 bytes) plus at least one merge"),
        ));
    }
    if docs.is_empty() {
        return Err(TrainError::Data("no documents to train the tokenizer on".into()));
    }
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(BOS_TOKEN, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut trainer = TrainerWrapper::BpeTrainer(trainer);
    let byte_level = ByteLevel::new(false, false, true);
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(byte_level));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer.train(&mut trainer, docs.iter().map(|d| d.as_ref())).map_err(|e| TrainError::Tokenizer(e.to_string()))?;
    let bos_id = tokenizer.token_to_id(BOS_TOKEN).ok_or_else(|| TrainError::Tokenizer("the trained vocabulary lacks the BOS token".into()))?;
    let tok_err = |e: String| TrainError::Tokenizer(e);
    let mut builder = TemplateProcessing::builder();
    builder.try_single(format!("{BOS_TOKEN} $A")).map_err(|e| tok_err(format!("{e:?}")))?;
    builder.try_pair(format!("{BOS_TOKEN} $A:0 {BOS_TOKEN}:1 $B:1")).map_err(|e| tok_err(format!("{e:?}")))?;
    builder.special_tokens(vec![(BOS_TOKEN.to_string(), bos_id)]);
    let template = builder.build().map_err(|e| tok_err(e.to_string()))?;
    // Llama 3's post-processor: byte-level offsets (untrimmed), then the template.
    let processor = Sequence::new(vec![PostProcessorWrapper::ByteLevel(ByteLevel::new(false, false, true)), PostProcessorWrapper::Template(template)]);
    tokenizer.with_post_processor(Some(processor));
    Ok(tokenizer)
}

/// Tokenises each document with its BOS (`add_special_tokens = true`), in parallel, in order.
pub fn encode_documents<S: AsRef<str> + Sync>(tokenizer: &Tokenizer, docs: &[S]) -> Result<Vec<Vec<u32>>, TrainError> {
    use rayon::prelude::*;
    docs.par_iter()
        .enumerate()
        .map(|(i, d)| tokenizer.encode(d.as_ref(), true).map(|e| e.get_ids().to_vec()).map_err(|e| TrainError::Tokenizer(format!("document {i}: {e}"))))
        .collect()
}

/// The tokenizer as the canonical `tokenizer.json` text (pretty, as transformers saves it).
pub fn tokenizer_json(tokenizer: &Tokenizer) -> Result<String, TrainError> {
    tokenizer.to_string(true).map_err(|e| TrainError::Tokenizer(e.to_string()))
}

/// The BOS id of a tokenizer made by [`train_tokenizer`] (or any tokenizer holding [`BOS_TOKEN`]).
pub fn bos_id(tokenizer: &Tokenizer) -> Option<u32> {
    tokenizer.token_to_id(BOS_TOKEN)
}
