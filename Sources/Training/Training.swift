/// Training the Transformer: losses, the optimizer, learning-rate schedules, batching, the trainer,
/// decoding and evaluation (BLEU).
public enum Training {}
