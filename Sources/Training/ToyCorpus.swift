/// The seed 002 corpus as translation pairs: each line's clauses, first → second.
public enum ToyCorpus {
    public static let pairs: [(source: String, target: String)] = [
        ("白日依山尽", "黄河入海流"),
        ("马无夜草不肥", "人无横财不富"),
        ("天行健", "君子以自强不息"),
        ("地势坤", "君子以厚德载物")
    ]
}
