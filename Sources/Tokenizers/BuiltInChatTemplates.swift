import Foundation

extension ChatTemplate {
    /// Chat formats for architectures whose GGUF files often come without `tokenizer.chat_template`,
    /// keyed by `general.architecture`; written for this project from each model card's format.
    ///
    /// Gemma (`gemma3`): turns are `<start_of_turn>ROLE\n…<end_of_turn>\n` with the assistant's role
    /// named `model`; Gemma has no system role, so a system message is put in front of the first user
    /// turn followed by a blank line; contents are trimmed; roles must alternate, user first.
    public static let builtIn: [String: String] = [
        "gemma3": """
        {{ bos_token }}
        {%- set prefix = '' -%}
        {%- set turns = messages -%}
        {%- if messages and messages[0]['role'] == 'system' -%}
            {%- set prefix = messages[0]['content'] | trim ~ '\\n\\n' -%}
            {%- set turns = messages[1:] -%}
        {%- endif -%}
        {%- for m in turns -%}
            {%- if (m['role'] == 'user') != (loop.index0 % 2 == 0) -%}
                {{ raise_exception('Gemma expects the turns to alternate user, assistant, user, …') }}
            {%- endif -%}
            {{ '<start_of_turn>' ~ ('model' if m['role'] == 'assistant' else m['role']) ~ '\\n' }}
            {{- (prefix if loop.first else '') ~ m['content'] | trim ~ '<end_of_turn>\\n' -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}
        """
    ]
}
